#!/usr/bin/env bash
# Browser tests of the SockJS bridge: sockjs-client from npm in Debian's
# Chromium (playwright-core). Installs the npm packages (npm ci); without
# /usr/bin/chromium it skips loudly, or fails when CI=true.
# Run from anywhere: bash sockjs/test.sh
set -euo pipefail
cd "$(dirname "$0")/test"

log() { echo "sockjs: $*"; }

log "installing npm dev dependencies (npm ci)"
npm ci --no-audit --no-fund
if [ ! -d ../../js-client/node_modules/playwright-core ]; then
  # The browser harness (and its playwright-core) is js-client's.
  log "installing js-client's npm dev dependencies (npm ci)"
  (cd ../../js-client && npm ci --no-audit --no-fund)
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "${CI:-}" = true ]; then
    log "FAIL: /usr/bin/chromium not found; the browser tests cannot run"
    exit 1
  fi
  log "SKIPPED: /usr/bin/chromium not found; the SockJS browser tests did not run (they are required in CI)"
  exit 0
fi

log "browser tests"
node --test --test-timeout=120000 browser.test.mjs
