package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"time"
)

// meter counts, per Tether session, the bytes that cross the TCP
// connections both ways (HTTP headers, chunk framing and WebSocket framing
// included) and the HTTP requests made, and cuts a session's connections on
// demand. It wraps the listener, so it sees the bytes as the kernel does.
//
// A connection's bytes go to the session of the request it serves. HTTP/1.1
// serves one request at a time per connection, and browsers do not
// pipeline, so the bytes read between two requests (the next request's
// head) go to the next request's session, and the bytes written after a
// handler returns (the end of its response) to the one before.
type meter struct {
	mu       sync.Mutex
	sessions map[string]*counts    // by public session id; guarded by mu
	conns    map[*meteredConn]bool // open connections; guarded by mu
}

// counts is one session's traffic.
type counts struct {
	bytesIn  atomic.Int64 // read from the client
	bytesOut atomic.Int64 // written to the client
	requests atomic.Int64 // HTTP requests, negotiate and WebSocket handshakes included
	cutNext  atomic.Bool  // cut the next attach: no connection was open to cut
}

// Stats is what /demo/stats answers about one session.
type Stats struct {
	BytesIn  int64 `json:"bytesIn"`
	BytesOut int64 `json:"bytesOut"`
	Requests int64 `json:"requests"`
}

func newMeter() *meter {
	return &meter{sessions: make(map[string]*counts), conns: make(map[*meteredConn]bool)}
}

// listen wraps ln so that its connections are counted.
func (m *meter) listen(ln net.Listener) net.Listener { return &meteredListener{Listener: ln, m: m} }

type meteredListener struct {
	net.Listener
	m *meter
}

func (l *meteredListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	mc := &meteredConn{Conn: c, m: l.m}
	l.m.mu.Lock()
	l.m.conns[mc] = true
	l.m.mu.Unlock()
	return mc, nil
}

// meteredConn counts what crosses one connection.
type meteredConn struct {
	net.Conn
	m *meter

	owner   atomic.Pointer[counts] // the session of the request served now or last; nil for none
	serving atomic.Bool            // a request of owner is being served: reads are its
	pending atomic.Int64           // bytes read while no request was served
	written atomic.Int64           // bytes written since the request began
	closed  sync.Once
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if o := c.owner.Load(); o != nil && c.serving.Load() {
			o.bytesIn.Add(int64(n))
		} else {
			c.pending.Add(int64(n))
		}
	}
	return n, err
}

// Write counts p before writing it, so that a client that has read the
// bytes never finds them missing from the counts; a short write takes the
// rest back.
func (c *meteredConn) Write(p []byte) (int, error) {
	o := c.owner.Load()
	c.count(o, len(p))
	n, err := c.Conn.Write(p)
	if n < len(p) {
		c.count(o, n-len(p))
	}
	return n, err
}

func (c *meteredConn) count(o *counts, n int) {
	c.written.Add(int64(n))
	if o != nil {
		o.bytesOut.Add(int64(n))
	}
}

func (c *meteredConn) Close() error {
	c.closed.Do(func() {
		c.m.mu.Lock()
		delete(c.m.conns, c)
		c.m.mu.Unlock()
	})
	return c.Conn.Close()
}

// claim makes o (nil for none) the owner of the bytes c carries from now
// on, with the bytes read since the last request.
func (c *meteredConn) claim(o *counts) {
	c.owner.Store(o)
	c.written.Store(0)
	pending := c.pending.Swap(0)
	if o != nil {
		o.bytesIn.Add(pending)
		o.requests.Add(1)
	}
	c.serving.Store(true)
}

type connKey struct{}

// connContext is the http.Server's ConnContext: it keeps the connection
// in every request's context.
func (m *meter) connContext(ctx context.Context, c net.Conn) context.Context {
	if mc, ok := c.(*meteredConn); ok {
		return context.WithValue(ctx, connKey{}, mc)
	}
	return ctx
}

// attachNames are the last path elements of the requests that attach a
// connection to a session.
var attachNames = map[string]bool{"websocket": true, "sse": true, "streaming": true, "longpoll": true}

// wrap returns h with every request's bytes counted for its session: the
// session named by its session parameter, or for negotiate the session it
// creates.
func (m *meter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mc, _ := r.Context().Value(connKey{}).(*meteredConn)
		if mc == nil {
			h.ServeHTTP(w, r)
			return
		}
		name := path.Base(r.URL.Path)
		if name == "negotiate" {
			o := new(counts)
			mc.claim(o)
			sw := &sniffer{ResponseWriter: w}
			h.ServeHTTP(sw, r)
			mc.serving.Store(false)
			var resp struct{ Session string }
			if json.Unmarshal(sw.body.Bytes(), &resp) == nil && resp.Session != "" {
				m.mu.Lock()
				m.sessions[resp.Session] = o
				m.mu.Unlock()
			}
			return
		}
		o := m.lookup(r.URL.Query().Get("session"))
		mc.claim(o)
		if o != nil && attachNames[name] && o.cutNext.CompareAndSwap(true, false) {
			mc.breakOff() // the cut asked for while no connection was attached
			return
		}
		h.ServeHTTP(w, r)
		if name != "websocket" { // a WebSocket's connection stays the session's
			mc.serving.Store(false)
		}
	})
}

// sniffer keeps a copy of a negotiate answer, to learn the session id.
type sniffer struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (s *sniffer) Write(p []byte) (int, error) {
	if s.body.Len() < 4096 {
		s.body.Write(p)
	}
	return s.ResponseWriter.Write(p)
}

func (s *sniffer) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (m *meter) lookup(id string) *counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[id]
}

// forget drops a session's counts once it has ended.
func (m *meter) forget(id string) {
	m.mu.Lock()
	delete(m.sessions, id)
	m.mu.Unlock()
}

// stats returns a session's counts, and whether the session is known.
func (m *meter) stats(id string) (Stats, bool) {
	o := m.lookup(id)
	if o == nil {
		return Stats{}, false
	}
	return Stats{BytesIn: o.bytesIn.Load(), BytesOut: o.bytesOut.Load(), Requests: o.requests.Load()}, true
}

// cut closes the TCP connections serving session id now, as a network
// failure would: the session lives on and its client attaches again. When
// none is serving it (a long poll between two polls), the session's next
// attach is cut instead. It returns the connections closed, and false for
// an unknown session.
func (m *meter) cut(id string) (int, bool) {
	o := m.lookup(id)
	if o == nil {
		return 0, false
	}
	var victims []*meteredConn
	m.mu.Lock()
	for c := range m.conns {
		if c.owner.Load() == o && c.serving.Load() {
			victims = append(victims, c)
		}
	}
	m.mu.Unlock()
	if len(victims) == 0 {
		o.cutNext.Store(true)
	}
	for _, c := range victims {
		c.breakOff()
	}
	return len(victims), true
}

// brokenHead starts a response that never ends.
const brokenHead = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"

// breakOff closes c as a network failure in the middle of a response
// would. A browser sends a request again by itself when a reused
// connection closes before any of the response arrives, which would hide
// the cut; so a connection that has written nothing of its response yet
// first writes the head of one. Its bytes are not counted: the demo adds
// them, not the transport.
func (c *meteredConn) breakOff() {
	if c.written.Load() == 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.Conn.Write([]byte(brokenHead))
	}
	c.Close()
}
