#!/usr/bin/env bash
# Runs every native Go fuzz target for a bounded number of executions.
#
# The budget is a count (-fuzztime=Nx), not a duration: Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when a
# duration-based -fuzztime ends while a worker is mid-call on a loaded
# machine (go.dev/issue/75804, fixed in Go 1.27). A count has no deadline to
# race; -timeout still bounds each target in wall time.
#
# Usage: scripts/fuzz.sh [execs]   (default 100000; targets that drive a
# whole HTTP exchange per input get a tenth of it)
set -euo pipefail
cd "$(dirname "$0")/.."
execs="${1:-100000}"
execs="${execs%x}"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		n="$execs"
		case "$target" in
		FuzzServeSend) n=$((execs / 10)) ;;
		esac
		echo "== $pkg $target (${n} execs)"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="${n}x" -timeout 5m "$pkg"
	done
done
