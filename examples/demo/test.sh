#!/usr/bin/env bash
# The demo's browser test (examples/browser-test.sh): builds the demo, runs
# the comparison in Chromium and saves test-output/demo.png.
# Run from anywhere: bash examples/demo/test.sh
exec bash "$(dirname "$0")/../browser-test.sh" demo
