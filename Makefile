.PHONY: test demo fuzz

# Every test: Go with -race, then the JavaScript client in Node and Chromium.
test:
	bash scripts/test.sh

# The page comparing the transports on http://127.0.0.1:8080/.
demo:
	go run ./examples/demo

# Each fuzz target for a bounded number of executions (FUZZEXECS, default 100000).
FUZZEXECS ?= 100000
fuzz:
	bash scripts/fuzz.sh $(FUZZEXECS)
