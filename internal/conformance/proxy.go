package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/faultproxy"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// viaProxy puts a fault proxy in front of the server at base and returns
// the proxy and the prefix URL through it.
func viaProxy(t *testing.T, base string, opts *faultproxy.Options) (*faultproxy.Proxy, string) {
	t.Helper()
	hostport := strings.TrimPrefix(strings.TrimSuffix(base, "/rt/"), "http://")
	p, err := faultproxy.New(hostport, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, "http://" + p.Addr() + "/rt/"
}

// heartbeatsKeepIdleConnectionAlive: behind a proxy that kills connections
// idle for 10 heartbeat intervals, an idle session stays attached for 25.
// (With 4 intervals, a 300 ms stall of a loaded 2-core machine running
// -race was enough for a kill now and then: the margin is the machine's, the
// ratio is what the test is about.)
func heartbeatsKeepIdleConnectionAlive(t *testing.T, e *Env) {
	ctx := e.Context(t)
	const beat = 100 * time.Millisecond
	_, base := e.Server(t, Echo, &tether.Options{HeartbeatInterval: beat})
	p, via := viaProxy(t, base, &faultproxy.Options{IdleTimeout: 10 * beat})
	c := e.Dial(t, ctx, via, &client.Options{HTTPClient: noKeepAlive(t)})
	time.Sleep(25 * beat) // idle
	if err := c.Send(ctx, text("awake")); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Recv(ctx); err != nil || string(m.Data) != "awake" {
		t.Fatalf("Recv = %q, %v", m.Data, err)
	}
	if kills := p.Stats().IdleKills; kills != 0 {
		t.Fatalf("the proxy killed %d idle connections; heartbeats should have kept them busy", kills)
	}
}

// BurstEcho is a handler that answers "burst N" with N text messages
// "d0", "d1", ... and echoes everything else.
var BurstEcho = &tether.Callbacks{
	Message: func(s *session.Session, m wire.Message) {
		var n int
		if _, err := fmt.Sscanf(string(m.Data), "burst %d", &n); err != nil {
			n = -1
		}
		for i := range n {
			if s.Send(s.Context(), text(fmt.Sprintf("d%d", i))) != nil {
				return
			}
		}
		if n < 0 {
			s.Send(s.Context(), m)
		}
	},
}

// resumeAfterCutMidBurst: the connection is cut twice while messages flow
// both ways; every message arrives once, in order.
func resumeAfterCutMidBurst(t *testing.T, e *Env) {
	const n = 3000
	ctx := e.Context(t)
	_, base := e.Server(t, BurstEcho, &tether.Options{HeartbeatInterval: time.Second, SlowConsumer: session.SlowConsumerBlock})
	p, via := viaProxy(t, base, nil)
	c := e.Dial(t, ctx, via, nil)
	if err := c.Send(ctx, text(fmt.Sprintf("burst %d", n))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sendErr := make(chan error, 1)
	wg.Go(func() {
		for i := range n {
			if err := c.Send(ctx, text(fmt.Sprintf("u%d", i))); err != nil {
				sendErr <- err
				return
			}
		}
	})
	var down, up int
	for down < n || up < n {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv after %d down, %d up: %v", down, up, err)
		}
		switch {
		case fmt.Sprintf("d%d", down) == string(m.Data):
			down++
		case fmt.Sprintf("u%d", up) == string(m.Data):
			up++
		default:
			t.Fatalf("got %q after %d down, %d up: lost, duplicated or reordered", m.Data, down, up)
		}
		if total := down + up; total == n/2 || total == n {
			p.CutAll()
		}
	}
	wg.Wait()
	select {
	case err := <-sendErr:
		t.Fatal(err)
	default:
	}
	if st := p.Stats(); st.Accepted < 2 {
		t.Fatalf("proxy accepted %d connections; the cuts should have forced a re-attach", st.Accepted)
	}
}

// noKeepAlive returns an HTTP client that opens a connection per request,
// so that no pooled connection sits idle behind the proxy: only the
// session's own connections are measured.
func noKeepAlive(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
