//go:build race

package conformance_test

// raceDetector is true when the tests run with -race, which makes every
// memory access several times as costly.
const raceDetector = true
