package conformance_test

import (
	"strings"
	"testing"

	"github.com/tetherkit/tether/internal/conformance"
)

// TestTransportsInCluster runs the table against every transport of a
// three-node cluster behind a round-robin front, so that the requests of a
// session reach nodes that relay them to its owner: every behaviour holds
// through the relay. The topic rows are left out: their handler calls the
// one Server it was given, which holds the sessions of one node only.
func TestTransportsInCluster(t *testing.T) {
	for _, name := range conformance.OfferedTransports(t) {
		t.Run(name, func(t *testing.T) {
			for _, b := range conformance.Table {
				if strings.HasPrefix(b.Name, "Topic") {
					continue
				}
				t.Run(b.Name, func(t *testing.T) {
					b.Run(t, &conformance.Env{Transport: name, Cluster: true})
				})
			}
		})
	}
}
