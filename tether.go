package tether

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/internal/httpx"
	jsclient "github.com/tetherkit/tether/js-client"
	"github.com/tetherkit/tether/longpoll"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/sse"
	"github.com/tetherkit/tether/streaming"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/websocket"
	"github.com/tetherkit/tether/wire"
)

// ProtocolVersion is the version of PROTOCOL.md this server speaks.
const ProtocolVersion = 1

// Handler serves one session. ServeSession runs in a goroutine of its own
// for the whole session; when it returns, the session is closed with
// StatusNormalClosure unless it has closed already.
type Handler interface {
	ServeSession(s *session.Session)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(s *session.Session)

// ServeSession calls f(s).
func (f HandlerFunc) ServeSession(s *session.Session) { f(s) }

// Callbacks serves sessions through functions that the session calls,
// with no goroutine per session: a Server given a *Callbacks calls Open
// while it creates the session, then Message for each message from the
// client, on the goroutine that received it, then Close. It suits servers
// that hold many mostly idle sessions; a Handler suits sessions that do
// long work of their own. Unlike a Handler, Callbacks do not close the
// session when they return: the session lives until either side closes
// it (Session.Close) or the client does not come back.
type Callbacks struct {
	// Open, if set, is called once for each new session before the
	// client learns of it, so before any message: it may Send, read
	// Request, or Close the session. It runs in the negotiate request and
	// delays its answer.
	Open func(s *session.Session)
	// Message is called for each message from the client, in order and
	// one call at a time per session, as session.Session.OnMessage
	// describes: it should return promptly (the session reads nothing
	// more from that client until it does), and may Send.
	Message func(s *session.Session, m wire.Message)
	// Close, if set, is called once when the session has closed, with its
	// CloseError, after the last call to Message, in a goroutine of its
	// own.
	Close func(s *session.Session, err error)
}

// ServeSession implements Handler, for code that runs a Handler in a
// goroutine of its own (a Server does not, for Callbacks): it calls Open,
// then Message for each message Recv returns, then Close.
func (cb *Callbacks) ServeSession(s *session.Session) {
	if cb.Open != nil {
		cb.Open(s)
	}
	for {
		m, err := s.Recv(s.Context())
		if err != nil {
			if err = s.Err(); err == nil {
				err = context.Cause(s.Context())
			}
			if cb.Close != nil {
				cb.Close(s, err)
			}
			return
		}
		cb.Message(s, m)
	}
}

// transportRegistry makes each transport a Server can offer, by name, for
// the options of that Server (defaults applied). It has an entry for every
// name in transport.Names, which gives the default order.
var transportRegistry = map[string]func(o *Options) transport.Transport{
	websocket.Name: func(*Options) transport.Transport { return websocket.New() },
	sse.Name: func(o *Options) transport.Transport {
		return sse.New(&sse.Options{MaxStreamBytes: o.MaxStreamBytes})
	},
	streaming.Name: func(o *Options) transport.Transport {
		return streaming.New(&streaming.Options{MaxStreamBytes: o.MaxStreamBytes})
	},
	longpoll.Name: func(*Options) transport.Transport { return longpoll.New() },
}

// Server is an http.Handler that serves Tether's endpoints under the path
// it is mounted at: negotiate, send, one per transport, and the JavaScript
// client as tether.js (classic script) and tether.mjs (ES module). It routes on
// the last element of the request path, so it works mounted at "/rt/"
// directly or behind http.StripPrefix.
type Server struct {
	handler    Handler
	opts       Options
	store      session.Store
	sessionCfg *session.Config
	tcfg       *transport.Config
	origins    *httpx.OriginPolicy
	transports map[string]transport.Transport
	observer   ServerObserver // nil without Options.Observer
	broker     broker.Broker

	subsMu sync.Mutex
	subs   map[string]*subscriber // the sessions this server holds, by id; guarded by subsMu

	clients clientCounts // sessions per client, for MaxSessionsPerClient

	originLogged atomic.Int64 // when originRefused last logged, Unix ns

	mu           sync.Mutex
	shuttingDown bool // guarded by mu
	handlers     sync.WaitGroup
}

// NewServer returns a server that calls h for each new session (a
// *Callbacks is called without a goroutine per session). It panics if
// opts names a transport it does not know, or if h is a *Callbacks without
// Message, as http.Handle panics on a bad pattern.
func NewServer(h Handler, opts *Options) *Server {
	if cb, ok := h.(*Callbacks); ok && cb.Message == nil {
		panic("tether: Callbacks without Message")
	}
	o := opts.withDefaults()
	var nodeID string
	if c := o.Cluster; c != nil {
		if o.Store != nil || o.Broker != nil {
			panic("tether: Options.Cluster with Options.Store or Options.Broker")
		}
		nodeID = c.ID()
		o.Store = c.Store(o.MaxSessions)
		o.Broker = c.Broker()
	}
	if o.Store == nil {
		o.Store = session.NewMemoryStore(o.MaxSessions)
	}
	srv := &Server{
		handler: h,
		opts:    o,
		store:   o.Store,
		clients: clientCounts{max: o.MaxSessionsPerClient},
		sessionCfg: &session.Config{
			HeartbeatInterval: o.HeartbeatInterval,
			ResumeWindow:      o.ResumeWindow,
			FirstAttachWindow: o.FirstAttachWindow,
			MaxMessageBytes:   o.MaxMessageBytes,
			MaxQueuedBytes:    o.MaxQueuedBytes,
			SlowConsumer:      o.SlowConsumer,
			QueueBudget:       queueBudget(o.MaxQueuedBytesTotal),
			NodeID:            nodeID,
		},
		tcfg: &transport.Config{
			HeartbeatInterval: o.HeartbeatInterval,
			MaxMessageBytes:   o.MaxMessageBytes,
			MaxBodyBytes:      o.MaxBodyBytes,
			MaxPollBytes:      max(1, o.MaxQueuedBytes/2),
			WriteTimeout:      o.WriteTimeout,
			ReadTimeout:       o.ReadTimeout,
			Logger:            o.Logger,
		},
		origins:    httpx.NewOriginPolicy(o.AllowedOrigins, o.TrustForwardedProto),
		transports: make(map[string]transport.Transport),
		broker:     o.Broker,
		subs:       make(map[string]*subscriber),
	}
	if srv.broker == nil {
		srv.broker = broker.NewMemory()
	}
	for _, name := range o.Transports {
		newTransport, ok := transportRegistry[name]
		if !ok {
			panic(fmt.Sprintf("tether: unknown transport %q", name))
		}
		srv.transports[name] = newTransport(&o)
	}
	if o.Observer != nil {
		srv.observer = o.Observer.ServerObserver(slices.Clone(o.Transports))
		srv.sessionCfg.Observer = srv.observer
		if qo, ok := srv.observer.(QueueObserver); ok && srv.sessionCfg.QueueBudget != nil {
			qo.WatchQueuedBytes(srv.QueuedBytes)
		}
	}
	if ds, ok := o.Store.(session.DurableStore); ok {
		ds.SetRestore(srv.restore)
	}
	return srv
}

// negotiated tells the observer, if any, the outcome of a negotiate request.
func (srv *Server) negotiated(result NegotiateResult) {
	if srv.observer != nil {
		srv.observer.Negotiated(result)
	}
}

// Sessions returns how many sessions the server holds now.
func (srv *Server) Sessions() int { return srv.store.Len() }

// QueuedBytes returns the bytes that the queues of the server's sessions
// hold now, both directions together, as Options.MaxQueuedBytesTotal
// counts them; 0 when that is negative (nothing is counted).
func (srv *Server) QueuedBytes() int64 {
	if b := srv.sessionCfg.QueueBudget; b != nil {
		return b.Used()
	}
	return 0
}

// queueBudget returns the budget of Options.MaxQueuedBytesTotal, nil when
// it is negative.
func queueBudget(total int64) *session.QueueBudget {
	if total < 0 {
		return nil
	}
	return session.NewQueueBudget(total)
}

// ServeHTTP implements http.Handler.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only send and negotiate read a body, within ReadTimeout.
	httpx.IgnoreBody(w, r)
	// Every answer is written within WriteTimeout; those that wait (send,
	// negotiate, long polls) set it again once done waiting, and streams
	// and WebSockets set it for each write.
	httpx.AnswerWithin(w, srv.opts.WriteTimeout)
	name := path.Base(r.URL.Path)
	if name == "tether.js" || name == "tether.mjs" {
		// The client bundle is public: no origin check, its preflight
		// included.
		jsclient.ServeHTTP(w, r, name)
		return
	}
	if r.Method == http.MethodOptions {
		srv.origins.ServePreflight(w, r)
		return
	}
	if !srv.origins.Allowed(r) {
		srv.originRefused(r)
		httpx.Error(w, http.StatusForbidden, httpx.MsgOriginNotAllowed)
		return
	}
	srv.origins.SetCORS(w, r)
	switch name {
	case "negotiate":
		srv.serveNegotiate(w, r)
		return
	case "send":
		// The method and the query are checked before the session, as
		// on the transports.
		if _, _, ok := httpx.SendQuery(w, r); !ok {
			return
		}
		if s := srv.lookup(w, r, r.URL.Query()); s != nil {
			transport.ServeSend(w, r, s, srv.tcfg)
		}
		return
	}
	t, ok := srv.transports[name]
	if !ok {
		httpx.Error(w, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	if r.Method != http.MethodGet {
		httpx.MethodNotAllowed(w, http.MethodGet)
		return
	}
	q := r.URL.Query()
	received, bad := httpx.ParseCount(q, "received", 0)
	stated := q.Has("received")
	if rr, ok := t.(transport.ReceivedReader); ok && bad == "" {
		if n, ok := rr.Received(r); ok {
			received, stated = max(received, n), true
		}
	}
	if bad == "" && !stated {
		bad = "missing received"
	}
	// seq numbers the client messages a connection carries: only a
	// bidirectional transport reads it; the others ignore it, as every
	// parameter they do not take (PROTOCOL.md section 3).
	seq := uint64(1)
	if t.Bidirectional() {
		var bad2 string
		seq, bad2 = httpx.ParseCount(q, "seq", 1)
		if bad == "" {
			bad = bad2
		}
		if bad == "" && seq == 0 {
			bad = "invalid seq"
		}
	}
	heartbeat, bad3 := parseHeartbeat(q, srv.opts.HeartbeatInterval)
	if bad == "" {
		bad = bad3
	}
	if bad != "" {
		httpx.BadRequest(w, bad)
		return
	}
	s := srv.lookup(w, r, q)
	if s == nil {
		return
	}
	t.ServeAttach(w, r, &transport.Attach{Session: s, Received: received, Seq: seq, Config: srv.tcfg, Probe: q.Get("probe") == "1", Heartbeat: heartbeat})
}

// lookup finds the Endpoint of the request's session in the store, or
// answers 404 (503 when the store cannot reach the session's holder now,
// session.ErrUnreachable: the client tries again) and returns nil. The token is the Tether-Token header's when
// the request has one, and the token parameter's otherwise.
func (srv *Server) lookup(w http.ResponseWriter, r *http.Request, q url.Values) session.Endpoint {
	token := q.Get("token")
	if v, ok := r.Header[httpx.TokenHeader]; ok {
		token = v[0]
	}
	s, err := srv.store.Lookup(q.Get("session"), token)
	if errors.Is(err, session.ErrUnreachable) {
		srv.opts.Logger.Warn("tether: session holder unreachable", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		httpx.Error(w, http.StatusServiceUnavailable, httpx.MsgTryAgain)
		return nil
	}
	if err != nil {
		// Not the session parameter: a client that swapped its
		// parameters would have its token logged.
		srv.opts.Logger.Debug("tether: unknown session", "path", r.URL.Path, "remote", r.RemoteAddr)
		httpx.Error(w, http.StatusNotFound, httpx.MsgUnknownSession)
		return nil
	}
	return s
}

// Shutdown closes every session with StatusGoingAway (1001), which tells
// clients to reconnect, refuses new ones, and waits until the close frames
// are delivered, the handlers have returned, or ctx ends; then it ends
// whatever is left as Close does. A session whose client does not attach
// within two heartbeat intervals is ended without its close frame. It
// returns ctx.Err() if ctx ended first.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.shuttingDown = true
	srv.mu.Unlock()
	for _, s := range srv.store.Sessions() {
		s.Close(wire.StatusGoingAway, "server shutting down")
		// Every transport's client attaches at least once per heartbeat
		// interval; a client that does not is gone.
		s.Expire(2 * srv.opts.HeartbeatInterval)
	}
	done := make(chan struct{})
	go func() {
		srv.handlers.Wait()
		close(done)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for srv.store.Len() > 0 {
		select {
		case <-ctx.Done():
			srv.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends every session at once with StatusGoingAway, discarding what
// is queued, and refuses new sessions. A connection attached at that moment
// still carries the close frame to its client; sessions with none end at
// once. It does not wait for handlers to return.
func (srv *Server) Close() error {
	srv.mu.Lock()
	srv.shuttingDown = true
	srv.mu.Unlock()
	for _, s := range srv.store.Sessions() {
		s.Abort(wire.CloseError{Code: wire.StatusGoingAway, Reason: "server closed"})
		s.Expire(0) // no waiting for a client to attach
	}
	return nil
}

// originLogEvery is how often, at most, a server logs a request refused
// for its origin.
const originLogEvery = time.Minute

// originRefused logs a browser request refused for its origin, at most once
// every originLogEvery, with the Origin and the Host it was compared with:
// behind a proxy that does not pass the Host header (nginx's default sends
// the upstream's name), every browser is refused, and this line says why.
func (srv *Server) originRefused(r *http.Request) {
	now, last := time.Now().UnixNano(), srv.originLogged.Load()
	if now-last < int64(originLogEvery) || !srv.originLogged.CompareAndSwap(last, now) {
		return
	}
	srv.tcfg.Logger.Warn("tether: origin not allowed: the Origin is not the request's Host nor in Options.AllowedOrigins; behind a proxy, pass the Host header (nginx: proxy_set_header Host $http_host)",
		"origin", r.Header.Get("Origin"), "host", r.Host, "path", r.URL.Path)
}
