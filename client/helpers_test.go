package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// transports are the transports the client implements, each forced in turn
// by the integration tests.
var transports = []string{"websocket", "sse", "streaming", "longpoll"}

// testTimeout bounds every integration test.
const testTimeout = 30 * time.Second

// echo sends back every message of the session, in order.
func echo(s *session.Session) {
	for {
		m, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		if s.Send(s.Context(), m) != nil {
			return
		}
	}
}

// startServer runs a Tether server calling h under /rt/ on 127.0.0.1 and
// returns its prefix URL. wrap, if not nil, stands in front of the server as
// a proxy would. Everything stops when the test ends.
func startServer(t *testing.T, h tether.HandlerFunc, opts *tether.Options, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	if opts == nil {
		opts = &tether.Options{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv := tether.NewServer(h, opts)
	mux := http.NewServeMux()
	var handler http.Handler = srv
	if wrap != nil {
		handler = wrap(srv)
	}
	mux.Handle("/rt/", handler)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL + "/rt/"
}

// network dials TCP connections for the client and can cut them all, as a
// network would, or refuse new ones.
type network struct {
	mu    sync.Mutex
	conns map[*netConn]bool // guarded by mu
	down  bool              // guarded by mu; dials fail
	cuts  int               // guarded by mu; connections cut
}

type netConn struct {
	net.Conn
	n       *network
	stalled chan struct{} // closed to make the connection swallow what it reads
}

// Read swallows every byte once the connection is stalled, as on a dead
// network path, until the read deadline passes or the connection is closed.
func (c *netConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		select {
		case <-c.stalled:
			if err != nil {
				return 0, err
			}
			continue
		default:
			return n, err
		}
	}
}

func (c *netConn) Close() error {
	c.n.mu.Lock()
	delete(c.n.conns, c)
	c.n.mu.Unlock()
	return c.Conn.Close()
}

var errNetworkDown = errors.New("test network down")

func (n *network) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	down := n.down
	n.mu.Unlock()
	if down {
		return nil, errNetworkDown
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	nc := &netConn{Conn: c, n: n, stalled: make(chan struct{})}
	n.mu.Lock()
	if n.down {
		// The network went down (and was cut) while this dial was under
		// way: the connection never made it.
		n.mu.Unlock()
		c.Close()
		return nil, errNetworkDown
	}
	if n.conns == nil {
		n.conns = make(map[*netConn]bool)
	}
	n.conns[nc] = true
	n.mu.Unlock()
	return nc, nil
}

// cut closes every open connection.
func (n *network) cut() {
	n.mu.Lock()
	conns := n.conns
	n.conns = nil
	n.cuts += len(conns)
	n.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// stall makes every open connection silent: what arrives is lost, nothing
// is closed.
func (n *network) stall() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.conns {
		delete(n.conns, c)
		close(c.stalled)
	}
}

func (n *network) setDown(down bool) {
	n.mu.Lock()
	n.down = down
	n.mu.Unlock()
}

// options returns client options forcing transport name (all if "") over
// n, with short delays between attempts (MinDelay, MaxDelay). The HTTP
// client's idle connections are closed when the test ends.
func (n *network) options(t *testing.T, name string) *client.Options {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = n.dial
	hc := &http.Client{Transport: tr}
	t.Cleanup(hc.CloseIdleConnections)
	o := &client.Options{
		HTTPClient: hc,
		Dialer:     &websocket.Dialer{NetDialContext: n.dial},
		MinDelay:   10 * time.Millisecond,
		MaxDelay:   100 * time.Millisecond,
	}
	if name != "" {
		o.Transports = []string{name}
	}
	return o
}

// dial is client.Dial failing the test on error and closing the session
// when the test ends.
func dial(t *testing.T, ctx context.Context, url string, opts *client.Options) *client.Session {
	t.Helper()
	s, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", url, err)
	}
	t.Cleanup(func() {
		s.Close(wire.StatusNormalClosure, "test over")
		<-s.Done()
	})
	return s
}

func textMsg(s string) wire.Message { return wire.Message{Type: wire.Text, Data: []byte(s)} }
