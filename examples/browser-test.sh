#!/usr/bin/env bash
# Runs the browser test of one example (examples/<name>/test/, node's test
# runner driving Chromium through playwright-core). Needs js-client's npm dev
# dependencies (playwright-core), installed here when missing, and
# /usr/bin/chromium: without it the test is skipped loudly, and fails under
# CI=true.
# Run from anywhere: bash examples/browser-test.sh <name> (demo, ticker)
set -euo pipefail
name=$1
cd "$(dirname "$0")/.."

log() { echo "examples/$name: $*"; }

if [ ! -x /usr/bin/chromium ]; then
  if [ "${CI:-}" = true ]; then
    log "FAIL: /usr/bin/chromium not found; the browser test cannot run"
    exit 1
  fi
  log "SKIPPED: /usr/bin/chromium not found; the browser test did not run (it is required in CI)"
  exit 0
fi

if [ ! -d js-client/node_modules/playwright-core ]; then
  log "installing js-client's npm dev dependencies (npm ci)"
  (cd js-client && npm ci --no-audit --no-fund)
fi

log "browser test"
node --test --test-timeout=240000 "examples/$name/test/"
