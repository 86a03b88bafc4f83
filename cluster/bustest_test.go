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
