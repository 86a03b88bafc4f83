package redisstate_test

import (
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/cluster/statetest"
	"github.com/tetherkit/tether/internal/enginetest"
)

// TestConformance runs the StateStore conformance suite against a real
// redis-server, each node with a client of its own.
func TestConformance(t *testing.T) {
	e := enginetest.RedisT(t)
	admin := newClient(t, e.Addr)
	// tamper sets a field of the session's state hash.
	tamper := func(field, value string) func(t *testing.T, id string) {
		return func(t *testing.T, id string) {
			if err := admin.HSet(testContext(t), "tether:{"+id+"}:state", field, value).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	statetest.Run(t, statetest.Harness{
		New: func(t *testing.T, leaseTTL, window time.Duration) cluster.StateStore {
			return newStore(t, newClient(t, e.Addr), &redisstate.Options{LeaseTTL: leaseTTL, ResumeWindow: window})
		},
		Corrupt:      tamper("sent", "many"),
		OtherVersion: tamper("v", "2"),
	})
}
