package client_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// stripUpgrade stands for a proxy that does not pass WebSocket upgrades.
func stripUpgrade(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/websocket") {
			http.Error(w, "upgrade not allowed", http.StatusBadGateway)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestFallbackToLongPolling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startServer(t, echo, nil, stripUpgrade)
	var n network
	o := n.options(t, "")
	o.Transports = []string{"websocket", "longpoll"} // the streams would work here too
	failed := make(chan *client.AttemptError, 10)
	o.OnError = func(e *client.AttemptError) { failed <- e }
	s := dial(t, ctx, url, o)
	if got := s.Transport(); got != "longpoll" {
		t.Fatalf("Transport() behind a proxy without upgrades = %q, want longpoll", got)
	}
	// The WebSocket probe fails with the proxy's status, reported once.
	select {
	case e := <-failed:
		if e.Request != "attach" || e.Transport != "websocket" || e.Status != http.StatusBadGateway {
			t.Fatalf("OnError(%+v), want attach websocket 502", e)
		}
	case <-ctx.Done():
		t.Fatal("OnError not called for the refused WebSocket")
	}
	if err := s.Send(ctx, textMsg("through")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "through" {
		t.Fatalf("Recv() = %q, %v; want \"through\"", m.Data, err)
	}
	// After a cut, the transport that worked is tried again first.
	n.cut()
	if err := s.Send(ctx, textMsg("again")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "again" {
		t.Fatalf("Recv() after a cut = %q, %v; want \"again\"", m.Data, err)
	}
}

func TestNoTransportWorks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startServer(t, echo, nil, stripUpgrade)
	var n network
	_, err := client.Dial(ctx, url, n.options(t, "websocket"))
	if !errors.Is(err, client.ErrNoTransport) {
		t.Fatalf("Dial() over websocket only, behind a proxy without upgrades = %v, want ErrNoTransport", err)
	}
	if strings.Contains(err.Error(), "token=") {
		t.Fatalf("Dial() error %q shows the session token", err)
	}
	o := n.options(t, "")
	o.Transports = []string{"pigeon"}
	if _, err := client.Dial(ctx, url, o); !errors.Is(err, client.ErrUnknownTransport) {
		t.Fatalf("Dial() with an unknown transport = %v, want ErrUnknownTransport", err)
	}
}

func TestClientTransportOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startServer(t, echo, nil, nil)
	var n network
	o := n.options(t, "")
	o.Transports = []string{"longpoll", "websocket"}
	s := dial(t, ctx, url, o)
	if got := s.Transport(); got != "longpoll" {
		t.Fatalf("Transport() = %q, want longpoll, the first asked for", got)
	}
	// By default: long polling at once, then WebSocket, the server's first.
	s2 := dial(t, ctx, url, n.options(t, ""))
	if got := s2.Transport(); got != "longpoll" {
		t.Fatalf("Transport() by default, once Dial returns = %q, want longpoll", got)
	}
	waitTransport(t, ctx, s2, "websocket")
	o = n.options(t, "")
	o.DisableUpgrade = true
	s3 := dial(t, ctx, url, o)
	if got := s3.Transport(); got != "websocket" {
		t.Fatalf("Transport() with DisableUpgrade = %q, want websocket, the server's first", got)
	}
}

// waitTransport waits until s is on transport name, failing the test when
// ctx ends first.
func waitTransport(t *testing.T, ctx context.Context, s *client.Session, name string) {
	t.Helper()
	for s.Transport() != name {
		select {
		case <-ctx.Done():
			t.Fatalf("Transport() = %q, still not %s", s.Transport(), name)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestConcurrentUse sends and receives from several goroutines at once; the
// race detector checks the session's locking, the counts check delivery.
func TestConcurrentUse(t *testing.T) {
	const senders, each = 8, 200
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := startServer(t, echo, nil, nil)
			var n network
			s := dial(t, ctx, url, n.options(t, name))
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					for i := range each {
						if err := s.Send(ctx, textMsg(strconv.Itoa(g)+"/"+strconv.Itoa(i))); err != nil {
							t.Errorf("Send() = %v", err)
							return
						}
						_ = s.Transport()
						_ = s.ID()
					}
				})
			}
			var mu sync.Mutex
			got := make(map[string]int) // messages back, per sender
			for range 4 {
				wg.Go(func() {
					for range senders * each / 4 {
						m, err := s.Recv(ctx)
						if err != nil {
							t.Errorf("Recv() = %v", err)
							return
						}
						// Concurrent receivers may reorder between
						// themselves; count only.
						g, _, _ := strings.Cut(string(m.Data), "/")
						mu.Lock()
						got[g]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			for g := range senders {
				if n := got[strconv.Itoa(g)]; n != each {
					t.Errorf("sender %d: %d messages back, want %d", g, n, each)
				}
			}
			if err := s.Close(wire.StatusNormalClosure, ""); err != nil {
				t.Fatalf("Close() = %v", err)
			}
		})
	}
}
