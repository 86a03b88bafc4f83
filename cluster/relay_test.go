package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// relayEcho sends every message back.
var relayEcho = &tether.Callbacks{
	Message: func(s *session.Session, m wire.Message) {
		if err := s.Send(s.Context(), m); err != nil {
			s.Close(wire.StatusNormalClosure, "")
		}
	},
}

// dialTransport connects a Go client forced onto transport name.
func dialTransport(t *testing.T, ctx context.Context, url, name string, opts *client.Options) *client.Session {
	t.Helper()
	var o client.Options
	if opts != nil {
		o = *opts
	}
	o.Transports = []string{name}
	if o.MinDelay == 0 {
		o.MinDelay = 10 * time.Millisecond
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 200 * time.Millisecond
	}
	c, err := client.Dial(ctx, url, &o)
	if err != nil {
		t.Fatalf("Dial(%s): %v", name, err)
	}
	t.Cleanup(func() { c.Close(wire.StatusNormalClosure, "") })
	return c
}

func relayText(s string) wire.Message { return wire.Message{Type: wire.Text, Data: []byte(s)} }

// padding makes the exchanged messages large enough that a burst takes
// several bus messages and several responses of each transport.
const padding = "................................................................................"

// exchange sends n numbered messages from c (through an echo) and reads
// them back: every one exactly once, in order.
func exchange(t *testing.T, ctx context.Context, c *client.Session, prefix string, n int) {
	t.Helper()
	if err := exchangeErr(ctx, c, prefix, n); err != nil {
		t.Fatal(err)
	}
}

// exchangeErr is exchange for any goroutine: it returns what went wrong.
func exchangeErr(ctx context.Context, c *client.Session, prefix string, n int) error {
	return exchangeMid(ctx, c, prefix, n, nil)
}

// exchangeMid is exchangeErr that calls mid, if not nil, once a third of
// the messages has come back.
func exchangeMid(ctx context.Context, c *client.Session, prefix string, n int, mid func()) error {
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if err := c.Send(ctx, relayText(prefix+strconv.Itoa(i)+padding)); err != nil {
				errs <- fmt.Errorf("Send #%d: %w", i, err)
				return
			}
		}
	})
	defer wg.Wait()
	for i := range n {
		if i == n/3 && mid != nil {
			mid()
		}
		m, err := c.Recv(ctx)
		if err != nil {
			return fmt.Errorf("Recv #%d: %w", i, err)
		}
		if want := prefix + strconv.Itoa(i) + padding; string(m.Data) != want {
			return fmt.Errorf("Recv #%d = %q, want %q", i, m.Data, want)
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// TestRelayEachTransport: three nodes behind a round-robin front, so that
// nearly every request of a session reaches a node that does not hold it;
// the Go client on each transport forced exchanges thousands of messages
// each way through an echo: each arrives exactly once and in order.
func TestRelayEachTransport(t *testing.T) {
	const messages = 5000
	for _, name := range transport.Names() {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			c := clustertest.Start(t, 3, relayEcho, nil)
			s := dialTransport(t, ctx, c.URL, name, nil)
			if c.OwnerOf(s.ID()) == nil {
				t.Fatalf("session id %q names no node of the cluster", s.ID())
			}
			exchange(t, ctx, s, "m", messages)
			t.Logf("%s: session %s, %d requests through the front", name, s.ID(), c.Requests.Load())
			if got := s.Transport(); got != name {
				t.Fatalf("Transport() = %q, want %q", got, name)
			}
		})
	}
}

// watched is a client and what its hooks saw.
type watched struct {
	c            *client.Session
	firstID      string
	reconnecting chan wire.CloseError
}

func dialWatched(t *testing.T, ctx context.Context, url, name string) *watched {
	w := &watched{reconnecting: make(chan wire.CloseError, 4)}
	w.c = dialTransport(t, ctx, url, name, &client.Options{
		OnReconnecting: func(ce wire.CloseError) { w.reconnecting <- ce },
	})
	w.firstID = w.c.ID()
	return w
}

// TestNodeKilled: a node killed mid-run (its bus connection and its HTTP
// server closed): the sessions it held end with 4006 owner gone and the Go
// client negotiates a new session by itself, on every transport; the
// sessions held by the other nodes, including those whose connection the
// killed node served, go on with nothing lost.
func TestNodeKilled(t *testing.T) {
	ctx := testContext(t)
	// Negotiates go to each node in turn, whatever the other requests.
	var negotiates atomic.Int64
	c := clustertest.Start(t, 3, relayEcho, &clustertest.Options{
		Node: &cluster.NodeOptions{OwnerGoneAfter: 500 * time.Millisecond},
		Route: func(r *http.Request) int {
			if path.Base(r.URL.Path) == "negotiate" {
				return int(negotiates.Add(1) % 3)
			}
			return -1
		},
	})
	victim := c.Nodes[0]
	var lost, kept []*watched
	for _, name := range transport.Names() {
		var onVictim, elsewhere bool
		for i := 0; i < 3 && !(onVictim && elsewhere); i++ {
			w := dialWatched(t, ctx, c.URL, name)
			exchange(t, ctx, w.c, "before", 100)
			if c.OwnerOf(w.c.ID()) == victim {
				lost, onVictim = append(lost, w), true
			} else {
				kept, elsewhere = append(kept, w), true
			}
		}
		if !onVictim || !elsewhere {
			t.Fatalf("%s: no session on the victim node and one elsewhere after 3 dials", name)
		}
	}
	c.Kill(victim)
	for _, w := range lost {
		select {
		case ce := <-w.reconnecting:
			if ce.Code != wire.StatusOwnerGone {
				t.Fatalf("%s: OnReconnecting(%v), want code %d", w.c.Transport(), ce, wire.StatusOwnerGone)
			}
		case <-ctx.Done():
			t.Fatalf("session %s of the killed node: no reconnect", w.firstID)
		}
		// The new session is held by a node that is alive.
		exchange(t, ctx, w.c, "after", 500)
		if id := w.c.ID(); id == w.firstID || c.OwnerOf(id) == victim {
			t.Fatalf("after the reconnect, ID() = %q (was %q)", id, w.firstID)
		}
	}
	for _, w := range kept {
		exchange(t, ctx, w.c, "after", 500)
		select {
		case ce := <-w.reconnecting:
			t.Fatalf("session %s of a live node reconnected: %v", w.firstID, ce)
		default:
		}
		if id := w.c.ID(); id != w.firstID {
			t.Fatalf("session of a live node: ID() = %q, was %q", id, w.firstID)
		}
	}
}

// TestRelayWithinPayloadLimit: on a bus whose payload limit is small, a
// node offers no message larger than it can relay (negotiate's
// maxMessageBytes is Node.MaxMessageBytes), and messages of that size, and
// bursts of many, cross the relay both ways on every transport, each bus
// message within the limit.
func TestRelayWithinPayloadLimit(t *testing.T) {
	const payload = 8 << 10
	for _, name := range transport.Names() {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			c := clustertest.Start(t, 3, relayEcho, &clustertest.Options{MaxPayload: payload})
			limit := c.Nodes[0].Node.MaxMessageBytes()
			if limit >= payload || limit < payload/2 {
				t.Fatalf("MaxMessageBytes() = %d on a bus of %d bytes", limit, payload)
			}
			if got := rawNegotiate(t, ctx, c.URL).MaxMessageBytes; got != limit {
				t.Fatalf("negotiate's maxMessageBytes = %d, want %d", got, limit)
			}
			s := dialTransport(t, ctx, c.URL, name, nil)
			big := []wire.Message{
				{Type: wire.Binary, Data: bytes.Repeat([]byte{0xfe}, limit)},
				{Type: wire.Text, Data: bytes.Repeat([]byte("é"), limit/2)},
			}
			for round := range 3 {
				for _, m := range big {
					if err := s.Send(ctx, m); err != nil {
						t.Fatalf("Send(%d bytes): %v", len(m.Data), err)
					}
				}
				for _, m := range big {
					got, err := s.Recv(ctx)
					if err != nil || got.Type != m.Type || !bytes.Equal(got.Data, m.Data) {
						t.Fatalf("round %d: Recv = %d bytes of type %v, %v; want the %d sent", round, len(got.Data), got.Type, err, len(m.Data))
					}
				}
			}
			exchange(t, ctx, s, "burst", 2000)
		})
	}
}

// TestShutdownRelayed: a node that shuts down gracefully closes its
// sessions with 1001, and the close frame reaches the clients that other
// nodes serve; they negotiate a new session, held by a node that stays.
func TestShutdownRelayed(t *testing.T) {
	ctx := testContext(t)
	// Negotiate reaches the first node until it shuts down, then the
	// third; every other request reaches the second.
	var leavingNow atomic.Bool
	c := clustertest.Start(t, 3, relayEcho, &clustertest.Options{Route: func(r *http.Request) int {
		switch {
		case path.Base(r.URL.Path) != "negotiate":
			return 1
		case leavingNow.Load():
			return 2
		}
		return 0
	}})
	leaving := c.Nodes[0]
	w := dialWatched(t, ctx, c.URL, "sse")
	exchange(t, ctx, w.c, "before", 100)
	leavingNow.Store(true)
	shut := make(chan error, 1)
	go func() { shut <- leaving.Server.Shutdown(ctx) }()
	select {
	case ce := <-w.reconnecting:
		if ce.Code != wire.StatusGoingAway {
			t.Fatalf("OnReconnecting(%v), want 1001", ce)
		}
	case <-ctx.Done():
		t.Fatal("no reconnect after the owner's Shutdown")
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	exchange(t, ctx, w.c, "after", 100)
	if c.OwnerOf(w.c.ID()) != c.Nodes[2] {
		t.Fatalf("the new session %s is not held by the third node", w.c.ID())
	}
}
