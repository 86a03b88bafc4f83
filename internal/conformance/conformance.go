package conformance

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Behaviour is one row of the table.
type Behaviour struct {
	Name string
	Run  func(t *testing.T, e *Env)
}

// Env is what a behaviour gets: the transport under test and ways to start
// a server and dial it.
type Env struct {
	Transport string
	// Callbacks runs the servers' *tether.Callbacks handlers (Echo,
	// BurstEcho) as callbacks; otherwise each runs in a goroutine of its
	// own per session, as a Handler does.
	Callbacks bool
	// Cluster makes Server start three servers, the nodes of one cluster
	// on a MemoryBus, behind a front that sends each request to the next
	// node (internal/clustertest): most requests then reach a node that
	// relays them to the session's owner.
	Cluster bool
}

// testTimeout bounds every behaviour.
const testTimeout = 60 * time.Second

// Run runs every behaviour of the table against transport, each as a
// subtest, with the handlers in goroutines (Handler) and then as callbacks
// (Callbacks).
func Run(t *testing.T, transport string) {
	for _, callbacks := range []bool{false, true} {
		for _, b := range Table {
			name := b.Name
			if callbacks {
				name += "/callbacks"
			}
			t.Run(name, func(t *testing.T) {
				b.Run(t, &Env{Transport: transport, Callbacks: callbacks})
			})
		}
	}
}

// Context returns a context bounded by the behaviour's time limit.
func (e *Env) Context(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Server starts a Tether server with h and opts, mounted at /rt/, and
// returns its prefix URL (with Cluster: the first node's server, and the
// front's URL). Everything stops when the test ends.
func (e *Env) Server(t *testing.T, h tether.Handler, opts *tether.Options) (*tether.Server, string) {
	if cb, ok := h.(*tether.Callbacks); ok && !e.Callbacks {
		h = tether.HandlerFunc(cb.ServeSession)
	}
	t.Helper()
	if e.Cluster {
		c := clustertest.Start(t, 3, h, &clustertest.Options{Server: opts})
		return c.Nodes[0].Server, c.URL
	}
	srv := tether.NewServer(h, quiet(opts))
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		// Sessions negotiated raw and never attached would hold a
		// graceful shutdown for two heartbeats; a second is enough for
		// the attached ones to get their close frame.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	return srv, hs.URL + "/rt/"
}

// Dial connects a client forced onto the transport under test.
func (e *Env) Dial(t *testing.T, ctx context.Context, base string, opts *client.Options) *client.Session {
	t.Helper()
	var o client.Options
	if opts != nil {
		o = *opts
	}
	o.Transports = []string{e.Transport}
	if o.MinDelay == 0 {
		o.MinDelay = 10 * time.Millisecond
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 100 * time.Millisecond
	}
	c, err := client.Dial(ctx, base, &o)
	if err != nil {
		t.Fatalf("Dial(%s): %v", e.Transport, err)
	}
	t.Cleanup(func() { c.Close(wire.StatusNormalClosure, "") })
	if got := c.Transport(); got != e.Transport {
		t.Fatalf("Transport() = %q, want %q", got, e.Transport)
	}
	return c
}

// Echo is a handler that sends every message back.
var Echo = &tether.Callbacks{
	Message: func(s *session.Session, m wire.Message) {
		if err := s.Send(s.Context(), m); err != nil {
			s.Close(wire.StatusNormalClosure, "")
		}
	},
}

// quiet returns opts with a logger that discards, unless opts has one: a
// test's output is its own findings, not every session's start and end.
func quiet(opts *tether.Options) *tether.Options {
	var o tether.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &o
}
