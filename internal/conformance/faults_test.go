package conformance_test

import (
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/internal/faultproxy"
)

// faultsMessages is how many messages go each way in
// TestExactDeliveryUnderFaults: cutsMessages() (100,000 unless
// TETHER_CUTS_MESSAGES says otherwise), or 10,000 with -short.
func faultsMessages() int {
	if testing.Short() {
		return min(cutsMessages(), 10_000)
	}
	return cutsMessages()
}

// TestExactDeliveryUnderFaults is TestExactDeliveryUnderRandomCuts with
// every fault of the proxy at once: each connection is cut after a random
// 200-800ms, stalls (nothing forwarded either way) for 20-150ms every
// 50-300ms, and every chunk is held 0-2ms. Over every offered transport,
// faultsMessages() messages go each way; count, order and content must be
// exact, and the test logs the counts and the faults injected.
func TestExactDeliveryUnderFaults(t *testing.T) {
	for _, name := range conformance.OfferedTransports(t) {
		t.Run(name, func(t *testing.T) {
			exactDeliveryThrough(t, name, faultsMessages(), &faultproxy.Options{
				CutAfter:   faultproxy.Range{Min: 200 * time.Millisecond, Max: 800 * time.Millisecond},
				StallEvery: faultproxy.Range{Min: 50 * time.Millisecond, Max: 300 * time.Millisecond},
				StallFor:   faultproxy.Range{Min: 20 * time.Millisecond, Max: 150 * time.Millisecond},
				Delay:      faultproxy.Range{Max: 2 * time.Millisecond},
			})
		})
	}
}
