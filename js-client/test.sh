#!/usr/bin/env bash
# Tests of the JavaScript client: installs what is missing, type-checks,
# checks that the committed bundle matches its source, prints its size, runs
# the unit tests (node's test runner), the npm package test (pack, install,
# bundle, type-check), the browser tests (Chromium via playwright-core) and
# the browser tests behind real nginx (test/hostile).
# Run from anywhere: bash js-client/test.sh
set -euo pipefail
cd "$(dirname "$0")"

log() { echo "js-client: $*"; }

if [ ! -x node_modules/.bin/esbuild ] || [ ! -d node_modules/playwright-core ] || [ ! -x node_modules/.bin/tsc ] || [ ! -d node_modules/@types/node ]; then
  log "installing npm dev dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  log "installing Debian's chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || log "apt-get install chromium failed"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Strict mode: src/ alone, without Node's types (it runs in browsers), then
# src/ with the unit tests, which run in Node.
log "type check (tsc --noEmit, strict)"
node_modules/.bin/tsc -p tsconfig.json --noEmit
node_modules/.bin/tsc -p tsconfig.test.json --noEmit

log "checking that dist/ is built from src/"
node build.mjs "$tmp/dist"
for f in tether.js tether.mjs tether.d.ts; do
  if ! cmp -s "$tmp/dist/$f" "dist/$f"; then
    log "dist/$f is stale: run 'npm run build' in js-client and commit dist/"
    exit 1
  fi
done

log "checking the published types"
node_modules/.bin/tsc --ignoreConfig --noEmit --strict --target es2020 --module esnext --moduleResolution bundler \
  --lib es2022,dom --types '' test/types/check.ts

node size.mjs

log "unit tests"
node_modules/.bin/esbuild test/unit/*.test.ts --bundle --platform=node --format=esm \
  --outdir="$tmp/unit" --out-extension:.js=.mjs --log-level=warning
node --test --test-timeout=60000 "$tmp/unit/"

log "package: npm pack, install, bundle, type check"
node --test --test-timeout=120000 test/pack/

log "browser tests"
if [ ! -x /usr/bin/chromium ]; then
  if [ "${CI:-}" = true ]; then
    log "FAIL: /usr/bin/chromium not found; the browser tests cannot run"
    exit 1
  fi
  log "SKIPPED: /usr/bin/chromium not found; the browser tests did not run (they are required in CI)"
  exit 0
fi
node --test --test-timeout=120000 test/browser/

log "browser tests behind real nginx (test/hostile)"
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  if [ "${CI:-}" = true ]; then
    log "FAIL: nginx not found; the tests behind nginx cannot run (scripts/setup.sh installs it)"
    exit 1
  fi
  log "SKIPPED: nginx not found; the tests behind nginx did not run (they are required in CI)"
  exit 0
fi
node --test --test-timeout=180000 test/hostile/

log "browser tests against a cluster of three nodes behind real nginx (test/cluster)"
for engine in redis-server nats-server; do
  if ! command -v $engine >/dev/null && [ ! -x /usr/sbin/$engine ] && [ ! -x /usr/bin/$engine ]; then
    if [ "${CI:-}" = true ]; then
      log "FAIL: $engine not found; the cluster tests cannot run (apt-get install $engine)"
      exit 1
    fi
    log "SKIPPED: $engine not found; the cluster tests did not run (they are required in CI)"
    exit 0
  fi
done
# One file runs as one test: the durable kills (two buses) make it longer than the others.
node --test --test-timeout=420000 test/cluster/
