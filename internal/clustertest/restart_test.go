package clustertest_test

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/wire"
)

// busDown is how long the bus's engine stays down in TestBusRestart: less
// than the time after which a node judges an owner it cannot reach gone
// (cluster.NodeOptions.OwnerGoneAfter, 5 s by default).
const busDown = 3 * time.Second

// TestBusRestart: the bus's engine (redis-server, nats-server) stops while
// every session sends, and starts again on the same port, empty, busDown
// later. The sessions whose connections all reach their owner (dialed to a
// node directly) go on as if nothing happened: every message once, in
// order, no new session. The sessions through nginx's round robin, most of
// whose requests are relayed, continue when the bus returns: every message
// once, in order; or, if one was lost for good, the session ends with 4000
// and the test sees it: nothing is lost silently.
func TestBusRestart(t *testing.T) {
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) {
			t.Parallel()
			e := startCluster(t, bus)
			var onOwner, relayed []*conn
			for i, tr := range transports {
				onOwner = append(onOwner, dial(t, strings.Replace(e.url, e.nginx.Addr, e.nodes[i%len(e.nodes)].Addr, 1), tr))
				relayed = append(relayed, dial(t, e.url, tr))
			}
			var restarted atomic.Bool
			restart := func() {
				e.engine.Stop()
				time.Sleep(busDown)
				if err := e.engine.Restart(); err != nil {
					t.Errorf("restarting %s: %v", bus, err)
				}
				restarted.Store(true)
			}
			began := time.Now()
			all := append(slices.Clone(onOwner), relayed...)
			outs := runPhases(all, restart, func(*conn) bool { return restarted.Load() })
			took := time.Since(began)
			if !restarted.Load() {
				t.Fatal("the bus was never restarted")
			}
			for i, cn := range all {
				o, direct := outs[i], i < len(onOwner)
				scenario := "bus restart, relayed"
				if direct {
					scenario = "bus restart, on owner"
				}
				for p, tl := range []*tally{o.warm, o.during, o.after} {
					err := o.errs[p]
					if ce := (wire.CloseError{}); !direct && errors.As(err, &ce) && ce.Code == wire.StatusResumeGap {
						// A relayed session that lost a message for good
						// ends with 4000: allowed, and seen.
						t.Logf("%s relayed: phase %d: the session ended with %v", cn.transport, p, err)
						break
					}
					if err != nil {
						t.Errorf("%s %s: phase %d: %v", cn.transport, scenario, p, err)
					}
					if !tl.exact() {
						t.Errorf("%s %s: phase %d: received %d of %d, lost %d, duplicated %d, reordered %d; want each once, in order",
							cn.transport, scenario, p, tl.distinct, tl.n, tl.lost(), tl.dup, tl.reordered)
					}
				}
				if rs := cn.reconnected(); len(rs) > 0 {
					t.Errorf("%s %s: new sessions %v; want none", cn.transport, scenario, rs)
				}
				record(t, phasesRow(bus, cn, scenario, o, took))
			}
		})
	}
}
