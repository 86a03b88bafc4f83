#!/usr/bin/env bash
# Runs every test of the project: the linters (gofmt, go vet, staticcheck, tsc), Go
# (with the race detector) and the JavaScript client (node's test runner and
# real Chromium). Installs what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh # system packages the tests use as real peers (nginx)

echo "== gofmt"
unformatted=$(gofmt -l .)
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files are not formatted (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

# The version go.mod's tool directive pins, so that every machine runs the
# same checks (the default set, plus staticcheck.conf where one exists).
echo "== staticcheck"
go tool staticcheck ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...
# The Go client behind real nginx (internal/hostile) writes its table here.
if [[ -f test-output/hostile-go.txt ]]; then
	echo "== the Go client behind nginx (internal/hostile)"
	cat test-output/hostile-go.txt
fi
# The Go client on three nodes behind nginx (internal/clustertest) writes its table here.
if [[ -f test-output/cluster-go.txt ]]; then
	echo "== the Go client on a cluster of three nodes (internal/clustertest)"
	cat test-output/cluster-go.txt
fi

# Every fuzz target for a bounded number of executions (6 targets: about
# 2 minutes), in CI or when FUZZ=1.
if [[ "${CI:-}" == "true" || "${FUZZ:-}" == "1" ]]; then
	echo "== fuzz (${FUZZEXECS:-100000} executions per target)"
	bash scripts/fuzz.sh "${FUZZEXECS:-100000}"
fi

if [[ -f js-client/test.sh ]]; then
	echo "== js-client"
	bash js-client/test.sh
fi
bash sockjs/test.sh # the SockJS bridge with sockjs-client in Chromium

# The browser bench at a few hundred messages per system (no timings
# checked); it uses js-client's and sockjs/test's npm packages, installed by
# the two steps above.
echo "== cmd/tether-bench -browser (smoke)"
TETHER_BENCH_BROWSER=1 go test -race -count=1 -run TestBrowserSmoke ./cmd/tether-bench

echo "== examples/demo (Chromium)"
bash examples/demo/test.sh

echo "== examples/ticker (Chromium)"
bash examples/ticker/test.sh
