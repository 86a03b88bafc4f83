package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/internal/enginetest"
)

// gatedStore is a redisstate Store whose WriteAlls wait, while its gate is
// shut, until it opens or their context ends; one whose context ended
// then goes to Redis all the same, as the writes a process sent just
// before it died do.
type gatedStore struct {
	*redisstate.Store

	mu      sync.Mutex
	gate    chan struct{} // guarded by mu: nil while open
	waiting int           // guarded by mu: WriteAlls held at the gate
	batches []int         // guarded by mu: the writes of each WriteAll
}

func (g *gatedStore) WriteAll(ctx context.Context, writes []cluster.StateWrite) []error {
	g.mu.Lock()
	g.batches = append(g.batches, len(writes))
	gate := g.gate
	if gate != nil {
		g.waiting++
	}
	g.mu.Unlock()
	if gate == nil {
		return g.Store.WriteAll(ctx, writes)
	}
	select {
	case <-gate:
	case <-ctx.Done():
		ctx = context.WithoutCancel(ctx)
	}
	g.mu.Lock()
	g.waiting--
	g.mu.Unlock()
	return g.Store.WriteAll(ctx, writes)
}

// shut holds the WriteAlls from now on; the function it returns opens the
// gate again.
func (g *gatedStore) shut() (open func()) {
	gate := make(chan struct{})
	g.mu.Lock()
	g.gate = gate
	g.mu.Unlock()
	return sync.OnceFunc(func() {
		g.mu.Lock()
		g.gate = nil
		g.mu.Unlock()
		close(gate)
	})
}

// held returns how many WriteAlls wait at the gate, and the largest batch
// so far.
func (g *gatedStore) held() (waiting, largest int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.batches {
		largest = max(largest, n)
	}
	return g.waiting, largest
}

// TestDurableWritesCoalesced: the writes of a durable node's sessions that
// come while its store's WriteAlls are all in flight wait, and go together
// in the next one; when the node dies with writes in flight and waiting,
// its sessions go on on the other nodes with nothing lost or repeated.
// Each of the sessions has one message echoed while the node's WriteAlls
// are held, so that how the writes are grouped does not depend on time.
func TestDurableWritesCoalesced(t *testing.T) {
	const sessions = cluster.WriteFlushers + 8
	ctx := testContext(t)
	e := enginetest.RedisT(t)
	var gated *gatedStore
	c := clustertest.Start(t, 3, relayEcho, &clustertest.Options{
		State: func(i int) cluster.StateStore {
			rdb := redis.NewClient(&redis.Options{Addr: e.Addr, MaxRetries: -1, DialTimeout: time.Second})
			t.Cleanup(func() { rdb.Close() })
			s, err := redisstate.New(rdb, &redisstate.Options{LeaseTTL: durableLease})
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				gated = &gatedStore{Store: s}
				return gated
			}
			return s
		},
		Route: func(r *http.Request) int {
			if path.Base(r.URL.Path) == "negotiate" {
				return 0
			}
			return -1
		},
	})
	node := c.Nodes[0]
	var clients []*client.Session
	for range sessions {
		s := dialDurable(t, ctx, c.URL, "websocket")
		exchange(t, ctx, s, "first", 1)
		clients = append(clients, s)
	}
	// echo has every client send one message and awaits its echo, while
	// the gate is shut: the first clients one at a time, until every
	// flusher holds the write of one at the gate, then the others, whose
	// writes wait. Then it calls then and opens the gate.
	echo := func(prefix string, then func()) {
		t.Helper()
		open := gated.shut()
		defer open()
		errs := make(chan error, sessions)
		await := func(what string, done func() bool) {
			t.Helper()
			for !done() {
				select {
				case err := <-errs:
					t.Fatalf("%s: an echo came before its write was let through (%v), awaiting %s", prefix, err, what)
				case <-ctx.Done():
					waiting, _ := gated.held()
					t.Fatalf("%s: %d WriteAlls held, %d writes waiting; awaiting %s", prefix, waiting, cluster.WritesWaiting(node.Node), what)
				case <-time.After(time.Millisecond):
				}
			}
		}
		for i, s := range clients {
			go func() { errs <- exchangeErr(ctx, s, fmt.Sprintf("%s%d-", prefix, i), 1) }()
			if i < cluster.WriteFlushers {
				await(fmt.Sprintf("%d WriteAlls held", i+1), func() bool { waiting, _ := gated.held(); return waiting == i+1 })
			}
		}
		await(fmt.Sprintf("%d writes waiting", sessions-cluster.WriteFlushers), func() bool {
			return cluster.WritesWaiting(node.Node) == sessions-cluster.WriteFlushers
		})
		then()
		open()
		for range sessions {
			if err := <-errs; err != nil {
				t.Fatalf("%s: %v", prefix, err)
			}
		}
	}
	echo("together", func() {})
	if _, largest := gated.held(); largest != sessions-cluster.WriteFlushers {
		t.Fatalf("the largest WriteAll carried %d writes, want the %d that waited", largest, sessions-cluster.WriteFlushers)
	}
	// The node dies with writes in flight (they reach Redis after it
	// released its leases) and writes waiting (never sent).
	ids := make([]string, sessions)
	for i, s := range clients {
		ids[i] = s.ID()
	}
	echo("killed", func() { go c.Kill(node) })
	for i, s := range clients {
		exchange(t, ctx, s, fmt.Sprintf("after%d-", i), 3)
		if s.ID() != ids[i] {
			t.Fatalf("session %d is now %q, was %q", i, s.ID(), ids[i])
		}
	}
	if held := c.Nodes[1].Server.Sessions() + c.Nodes[2].Server.Sessions(); held != sessions {
		t.Fatalf("the other nodes hold %d sessions after the kill, want %d", held, sessions)
	}
}
