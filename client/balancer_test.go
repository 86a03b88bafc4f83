package client_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// balancer stands in front of the server the test starts (the one that
// negotiates) and sends each request route picks for elsewhere to a second
// server that shares no session with it: a balancer over independent
// servers (PROTOCOL.md 10.6).
type balancer struct {
	other *tether.Server
	mu    sync.Mutex
	// route reports, per request, whether it goes to the other server; n
	// counts the requests of its endpoint so far, this one included.
	route func(endpoint string, n int) bool // guarded by mu
	count map[string]int                    // guarded by mu
}

func newBalancer(t *testing.T, route func(endpoint string, n int) bool) *balancer {
	b := &balancer{other: tether.NewServer(tether.HandlerFunc(echo), nil), route: route, count: map[string]int{}}
	t.Cleanup(func() { b.other.Close() })
	return b
}

func (b *balancer) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		b.mu.Lock()
		b.count[endpoint]++
		other := b.route(endpoint, b.count[endpoint])
		b.mu.Unlock()
		if other {
			b.other.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// requests returns how many requests of endpoint the balancer has seen.
func (b *balancer) requests(endpoint string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count[endpoint]
}

// failures records what Options.OnError reports.
type failures struct {
	mu   sync.Mutex
	list []string // guarded by mu
}

func (f *failures) add(e *client.AttemptError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, e.Request+" "+e.Transport+" "+strconv.Itoa(e.Status))
}

func (f *failures) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.list...)
}

// TestBalancerFallsBackToWebSocket: every poll reaches the server without
// the session, the first WebSocket handshake too. The automatic client
// goes on over WebSocket alone, with every message echoed once, in order,
// and reports the requests answered 404.
func TestBalancerFallsBackToWebSocket(t *testing.T) {
	for _, mode := range []struct {
		name       string
		transports []string
	}{{"automatic", nil}, {"websocket forced", []string{"websocket"}}, {"one after another", nil}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			b := newBalancer(t, func(endpoint string, n int) bool {
				return endpoint == "longpoll" || endpoint == "sse" || endpoint == "streaming" || endpoint == "websocket" && n == 1
			})
			url := startServer(t, echo, nil, b.wrap)
			var n network
			o := n.options(t, "")
			o.Transports = mode.transports
			o.DisableUpgrade = mode.name == "one after another"
			var f failures
			o.OnError = f.add
			var resumes, reconnects atomic.Int32
			o.OnResuming = func() { resumes.Add(1) }
			o.OnReconnecting = func(wire.CloseError) { reconnects.Add(1) }
			s := dial(t, ctx, url, o)
			var want []string
			for i := range 50 {
				m := "m" + strconv.Itoa(i)
				if err := s.Send(ctx, textMsg(m)); err != nil {
					t.Fatal(err)
				}
				want = append(want, m)
			}
			for i, w := range want {
				m, err := s.Recv(ctx)
				if err != nil {
					t.Fatalf("Recv %d: %v; OnError reported %q", i, err, f.get())
				}
				if string(m.Data) != w {
					t.Fatalf("Recv %d = %q, want %q", i, m.Data, w)
				}
			}
			if got := s.Transport(); got != "websocket" {
				t.Errorf("Transport() = %q, want websocket", got)
			}
			if got := b.requests("negotiate"); got != 1 {
				t.Errorf("%d negotiate requests, want 1: the same session goes on", got)
			}
			if resumes.Load() != 0 || reconnects.Load() != 0 {
				t.Errorf("OnResuming %d times, OnReconnecting %d times, want none", resumes.Load(), reconnects.Load())
			}
			// Automatic: a poll answered 404 (and the first handshake, as
			// the fall back's or an upgrade's); otherwise the first
			// handshake started it.
			if got := f.get(); !containsPrefix(got, "attach websocket 404") || mode.name == "automatic" && !containsPrefix(got, "attach longpoll 404") {
				t.Errorf("OnError reported %q, want the requests answered 404", got)
			}
		})
	}
}

// containsPrefix reports whether a string of list starts with prefix.
func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestBalancerWebSocketNeverReaches: after the fall back, every WebSocket
// handshake reaches the server without the session. The session ends with
// 4005 once the resume window has passed, after a failed attempt reported
// per handshake; no hang.
func TestBalancerWebSocketNeverReaches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	b := newBalancer(t, func(endpoint string, n int) bool { return endpoint == "longpoll" || endpoint == "websocket" })
	url := startServer(t, echo, &tether.Options{ResumeWindow: time.Second}, b.wrap)
	var n network
	o := n.options(t, "")
	o.Transports = []string{"websocket", "longpoll"}
	var f failures
	o.OnError = f.add
	s, err := client.Dial(ctx, url, o)
	if err == nil {
		defer func() { <-s.Done() }()
		defer s.Close(wire.StatusNormalClosure, "")
		_, err = s.Recv(ctx)
	}
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce.Code != wire.StatusSessionUnknown {
		t.Fatalf("Dial or Recv = %v, want CloseError 4005; OnError reported %q", err, f.get())
	}
	// A failed attempt per handshake of the fall back, each answered 404
	// (an upgrade's, tried while long polling worked, may come first).
	n404 := 0
	for _, e := range f.get() {
		if e == "attach websocket 404" {
			n404++
		}
	}
	if n404 < 2 || n404 < b.requests("websocket")-1 {
		t.Errorf("OnError reported %q for %d handshakes: want each handshake of the fall back, answered 404", f.get(), b.requests("websocket"))
	}
}

// TestBalancerAfterAttach: a session attached and working whose polls
// then reach the server without it ends with 4005, as before: that 404 is
// no evidence of a balancer, and no WebSocket is tried.
func TestBalancerAfterAttach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var moved atomic.Bool
	b := newBalancer(t, func(endpoint string, _ int) bool { return moved.Load() && endpoint == "longpoll" })
	url := startServer(t, echo, nil, b.wrap)
	var n network
	o := n.options(t, "")
	// Long polling first in the order: nothing is probed.
	o.Transports = []string{"longpoll", "websocket"}
	s := dial(t, ctx, url, o)
	if err := s.Send(ctx, textMsg("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(ctx); err != nil {
		t.Fatal(err)
	}
	moved.Store(true)
	_, err := s.Recv(ctx)
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce.Code != wire.StatusSessionUnknown {
		t.Fatalf("Recv = %v, want CloseError 4005", err)
	}
	if got := b.requests("websocket"); got != 0 {
		t.Errorf("%d WebSocket handshakes, want none", got)
	}
}
