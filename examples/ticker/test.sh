#!/usr/bin/env bash
# The ticker's browser test (examples/browser-test.sh): builds the ticker,
# loads its page in Chromium on each transport, checks that prices update
# and saves test-output/ticker.png.
# Run from anywhere: bash examples/ticker/test.sh
exec bash "$(dirname "$0")/../browser-test.sh" ticker
