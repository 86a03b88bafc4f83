package cluster_test

import (
	"testing"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/bustest"
)

// TestMemoryBusConformance runs the Bus conformance suite on MemoryBus.
func TestMemoryBusConformance(t *testing.T) {
	b := cluster.NewMemoryBus()
	bustest.Run(t, func(t *testing.T) cluster.Bus { return b.Connect() })
}

// BenchmarkPublish measures publish throughput on a MemoryBus.
func BenchmarkPublish(b *testing.B) {
	m := cluster.NewMemoryBus()
	bustest.BenchmarkPublish(b, func(testing.TB) cluster.Bus { return m.Connect() })
}

// BenchmarkRequest measures the round trip of a Request on a MemoryBus.
func BenchmarkRequest(b *testing.B) {
	m := cluster.NewMemoryBus()
	bustest.BenchmarkRequest(b, func(testing.TB) cluster.Bus { return m.Connect() })
}
