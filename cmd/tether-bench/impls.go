package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// conn is one client session of any system under test, carrying text
// messages. Send and Recv may each be used by one goroutine at a time.
type conn interface {
	Send(ctx context.Context, p []byte) error
	Recv(ctx context.Context) ([]byte, error)
	Close()
}

// system is one system on one transport.
type system struct {
	// Name is what the report calls it: "tether/websocket".
	Name string
	// Family is "tether", "raw" or "sockjs".
	Family string
	// Transport is the transport's name in its own system.
	Transport string
	// Peer names, for a Tether transport, its sockjs-go counterpart.
	Peer string
	// dial opens a session to the bench server at base ("http://host:port"),
	// counting its bytes into ctr.
	dial func(ctx context.Context, base string, env *dialEnv) (conn, error)
}

// dialEnv is what every session of one measurement shares.
type dialEnv struct {
	ctr *counter
	hc  *http.Client
	wsd *ws.Dialer
	// refused counts sockjs-go polls and streams refused with close 2010.
	refused *counter
}

func newDialEnv(keepAlive bool) *dialEnv {
	ctr := &counter{}
	return &dialEnv{
		ctr: ctr,
		hc: &http.Client{Transport: &http.Transport{
			DialContext:         ctr.dialFunc(),
			MaxIdleConnsPerHost: 4096,
			DisableKeepAlives:   !keepAlive,
			DisableCompression:  true,
		}},
		wsd:     &ws.Dialer{NetDialContext: ctr.dialFunc(), HandshakeTimeout: 30 * time.Second},
		refused: &counter{},
	}
}

func (e *dialEnv) close() { e.hc.CloseIdleConnections() }

// systems lists every system the bench measures, Tether first.
var systems = []*system{
	{Name: "tether/websocket", Family: "tether", Transport: "websocket", Peer: "sockjs/websocket", dial: dialTether("websocket")},
	{Name: "tether/sse", Family: "tether", Transport: "sse", Peer: "sockjs/eventsource", dial: dialTether("sse")},
	{Name: "tether/streaming", Family: "tether", Transport: "streaming", Peer: "sockjs/xhr-streaming", dial: dialTether("streaming")},
	{Name: "tether/longpoll", Family: "tether", Transport: "longpoll", Peer: "sockjs/xhr-polling", dial: dialTether("longpoll")},
	{Name: "gorilla/websocket", Family: "raw", Transport: "websocket", dial: dialRaw},
	{Name: "sockjs/websocket", Family: "sockjs", Transport: "websocket", dial: dialSockJSWebSocket},
	{Name: "sockjs/eventsource", Family: "sockjs", Transport: "eventsource", dial: dialSockJSHTTP("eventsource")},
	{Name: "sockjs/xhr-streaming", Family: "sockjs", Transport: "xhr-streaming", dial: dialSockJSHTTP("xhr_streaming")},
	{Name: "sockjs/xhr-polling", Family: "sockjs", Transport: "xhr-polling", dial: dialSockJSHTTP("xhr")},
}

// mixedTransports are the transports of mixedFanout's sessions, in turn.
var mixedTransports = []string{"websocket", "sse", "streaming", "longpoll"}

// mixedFanout is a system of the fan-out only: Tether sessions on every
// transport at once, subscribed to one topic, each session dialing the
// next transport of mixedTransports.
var mixedFanout = &system{Name: "tether/mixed", Family: "tether", Transport: strings.Join(mixedTransports, "+"), dial: dialTetherMixed()}

func systemByName(name string) *system {
	for _, s := range systems {
		if s.Name == name {
			return s
		}
	}
	if name == mixedFanout.Name {
		return mixedFanout
	}
	return nil
}

// tetherConn is a Tether session through the Go client. Messages arrive
// through client.Options.OnMessage, on the connection's reader: to the
// handler a workload installs (echo and fan-out answer and measure there,
// as the raw gorilla client does in its read loop), or else into a queue
// that Recv reads.
type tetherConn struct {
	s       *client.Session
	handler atomic.Pointer[func(p []byte)]
	closed  chan struct{}

	// queue is made by the first message without a handler, or the first
	// Recv: a workload that measures in a handler (the fan-out of 10,000
	// sessions) then holds no queue of 1024 slices per session, which
	// the load generator's garbage collector would scan on every cycle
	// while a raw gorilla client has none.
	queueOnce sync.Once
	queue     chan []byte
}

// recvQueue returns the queue, made on the first call.
func (c *tetherConn) recvQueue() chan []byte {
	c.queueOnce.Do(func() { c.queue = make(chan []byte, 1024) })
	return c.queue
}

func dialTether(transport string) func(ctx context.Context, base string, env *dialEnv) (conn, error) {
	return func(ctx context.Context, base string, env *dialEnv) (conn, error) {
		c := &tetherConn{closed: make(chan struct{})}
		s, err := client.Dial(ctx, base+tetherPrefix, &client.Options{
			Transports:     []string{transport},
			HTTPClient:     env.hc,
			Dialer:         env.wsd,
			ConnectTimeout: 30 * time.Second,
			OnMessage:      c.onMessage,
		})
		if err != nil {
			return nil, err
		}
		c.s = s
		return c, nil
	}
}

// dialTetherMixed returns a dial function that dials each session on the
// next transport of mixedTransports.
func dialTetherMixed() func(ctx context.Context, base string, env *dialEnv) (conn, error) {
	var next atomic.Uint32
	dials := make([]func(ctx context.Context, base string, env *dialEnv) (conn, error), len(mixedTransports))
	for i, t := range mixedTransports {
		dials[i] = dialTether(t)
	}
	return func(ctx context.Context, base string, env *dialEnv) (conn, error) {
		return dials[(next.Add(1)-1)%uint32(len(dials))](ctx, base, env)
	}
}

func (c *tetherConn) onMessage(m wire.Message) {
	if h := c.handler.Load(); h != nil {
		(*h)(m.Data)
		return
	}
	select {
	case c.recvQueue() <- m.Data:
	case <-c.closed:
	}
}

// setHandler makes h receive the messages, or (nil) the queue again.
func (c *tetherConn) setHandler(h func(p []byte)) {
	if h == nil {
		c.handler.Store(nil)
		return
	}
	c.handler.Store(&h)
}

func (c *tetherConn) Send(ctx context.Context, p []byte) error {
	return c.s.Send(ctx, wire.Message{Type: wire.Text, Data: p})
}

func (c *tetherConn) Recv(ctx context.Context) ([]byte, error) {
	select {
	case p := <-c.recvQueue():
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.s.Context().Done():
		return nil, c.s.Context().Err()
	}
}

func (c *tetherConn) Close() {
	close(c.closed)
	c.s.Close(wire.StatusNormalClosure, "")
}

// handlerConn is a conn whose messages can go to a handler on the
// connection's reader instead of Recv.
type handlerConn interface {
	conn
	setHandler(h func(p []byte))
}

// rawConnClient is a plain gorilla/websocket connection to the raw echo.
type rawConnClient struct{ c *ws.Conn }

func dialRaw(ctx context.Context, base string, env *dialEnv) (conn, error) {
	c, resp, err := env.wsd.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+rawPath, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	return &rawConnClient{c: c}, nil
}

func (c *rawConnClient) Send(ctx context.Context, p []byte) error {
	return c.c.WriteMessage(ws.TextMessage, p)
}

func (c *rawConnClient) Recv(ctx context.Context) ([]byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetReadDeadline(dl)
	} else {
		c.c.SetReadDeadline(time.Time{})
	}
	_, p, err := c.c.ReadMessage()
	return p, err
}

func (c *rawConnClient) Close() {
	c.c.WriteControl(ws.CloseMessage, ws.FormatCloseMessage(ws.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.c.Close()
}
