package sockjs

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	sockjsgo "github.com/igm/sockjs-go/v3/sockjs"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/httpx"
)

// Name is the transport name that sessions of SockJS clients report
// through Session.Transport, and the label of their metrics.
const Name = "sockjs"

// Options configure the bridge. A nil *Options means every default; New
// copies the struct.
type Options struct {
	// HeartbeatInterval is how often sockjs-go sends a heartbeat frame on
	// an idle connection, so that proxies do not close it. Default 25s.
	HeartbeatInterval time.Duration

	// DisconnectDelay is how long a SockJS session on an HTTP transport
	// (xhr-polling, xhr-streaming, eventsource) waits for the client's
	// next request before it ends, and the Tether session with it (1006).
	// Default 5s, as sockjs-go's.
	DisconnectDelay time.Duration

	// ResponseLimit is how many bytes an xhr-streaming or eventsource
	// response carries before it ends and the client opens the next one.
	// Default 128 KiB.
	ResponseLimit int

	// MaxBodyBytes is the largest xhr_send request body; a larger one
	// answers 413 and delivers none of its messages. It is also the
	// largest WebSocket message from a client (the same JSON array of
	// messages): a larger one ends the SockJS session at once, without a
	// close frame, and the Tether session with 1009. Default 1 MiB.
	MaxBodyBytes int

	// WriteTimeout bounds each write to a client: to a WebSocket, and to
	// an xhr-polling, xhr-streaming or eventsource response. A client
	// that reads nothing for so long ends its SockJS session, and the
	// Tether session with 1006. Default 10s.
	WriteTimeout time.Duration

	// ReadTimeout bounds reading one xhr_send request body, so that a
	// client sending it a byte at a time, or announcing more than it
	// sends, holds nothing but its own request, and that only so long; such
	// a request answers 408 and its connection is closed. Default 10s.
	ReadTimeout time.Duration
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 25 * time.Second
	}
	if c.DisconnectDelay <= 0 {
		c.DisconnectDelay = 5 * time.Second
	}
	if c.ResponseLimit <= 0 {
		c.ResponseLimit = 128 << 10
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	return c
}

// handler is what New returns: sockjs-go's handler behind the checks
// Tether applies to every request.
type handler struct {
	srv    *tether.Server
	prefix string
	opts   Options
	sockjs *sockjsgo.Handler

	mu       sync.Mutex
	trackers map[string]*tracker // by SockJS session id, HTTP transports only; guarded by mu
}

// New returns an http.Handler that serves SockJS clients at prefix (as
// "/sockjs": the URL given to sockjs-client, without a trailing slash) and
// hands each SockJS session to srv as a Tether session. Mount it for
// everything under the prefix:
//
//	mux.Handle("/sockjs/", sockjs.New(rt, "/sockjs", nil))
func New(srv *tether.Server, prefix string, opts *Options) http.Handler {
	h := &handler{
		srv:      srv,
		prefix:   strings.TrimSuffix(prefix, "/"),
		opts:     opts.withDefaults(),
		trackers: make(map[string]*tracker),
	}
	h.sockjs = sockjsgo.NewHandler(h.prefix, sockjsgo.Options{
		Websocket:       true,
		HeartbeatDelay:  h.opts.HeartbeatInterval,
		DisconnectDelay: h.opts.DisconnectDelay,
		ResponseLimit:   uint32(h.opts.ResponseLimit),
		WebsocketUpgrader: &websocket.Upgrader{
			// ServeHTTP has checked the origin with the server's policy.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		WebsocketWriteTimeout: h.opts.WriteTimeout,
		// CORS headers for the origins the server allows, none for others.
		CheckOrigin: srv.CheckOrigin,
	}, h.serve)
	return h
}

// endpoints are the last path elements of the SockJS session endpoints
// served; receiving is set for those whose response carries frames.
var endpoints = map[string]struct{ receiving bool }{
	"websocket":     {},
	"xhr_send":      {},
	"xhr":           {receiving: true},
	"xhr_streaming": {receiving: true},
	"eventsource":   {receiving: true},
}

// ServeHTTP checks the origin, refuses the endpoints the bridge does not
// serve, bounds xhr_send bodies, and counts what HTTP responses carry before
// handing the request to sockjs-go.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only xhr_send reads a body, within ReadTimeout.
	httpx.IgnoreBody(w, r)
	// Every answer is written within WriteTimeout: an xhr_send's once its
	// body is read, a poll's and a stream's each write, a WebSocket's by
	// sockjs-go.
	httpx.AnswerWithin(w, h.opts.WriteTimeout)
	if !h.srv.CheckOrigin(r) {
		httpx.Error(w, http.StatusForbidden, httpx.MsgOriginNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		httpx.Error(w, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	if rest == "" || rest == "/" || rest == "/info" {
		h.sockjs.ServeHTTP(w, r)
		return
	}
	// /{server}/{session}/{endpoint}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[0] != "" || parts[1] == "" || parts[2] == "" {
		httpx.Error(w, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	ep, ok := endpoints[parts[3]]
	if !ok {
		httpx.Error(w, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	switch {
	case parts[3] == "xhr_send" && r.Method == http.MethodPost:
		// sockjs-go holds an xhr_send, whatever becomes of its client,
		// until the session has taken its messages: a SockJS session's
		// xhr_sends take turns, each reading its body once it has the
		// turn, so that the session holds one body at most.
		ctx, done, err := httpx.TakeTurn(r.Context(), "sockjs "+parts[2])
		if err != nil {
			httpx.Error(w, http.StatusServiceUnavailable, httpx.MsgTryAgain)
			return
		}
		defer done()
		r = r.WithContext(ctx)
		if !h.readSendBody(w, r) {
			return
		}
		httpx.AnswerWithin(w, h.opts.WriteTimeout)
	case ep.receiving:
		kept, whole := keepHeaders(r)
		h.serveReceiving(&countingWriter{ResponseWriter: w, h: h, id: parts[2], timeout: h.opts.WriteTimeout}, kept)
		if h.tracker(parts[2]) != nil {
			// The bridge serves the session already: nothing asks for
			// the whole request any more (see keepHeaders).
			whole.Store(nil)
		}
		return
	case parts[3] == "websocket":
		w, r = limitWebSocket(w, r, h.opts.MaxBodyBytes)
	}
	h.sockjs.ServeHTTP(w, r)
}

// maxAttachTries bounds how many times serveReceiving hands one request to
// sockjs-go.
const maxAttachTries = 50

// serveReceiving serves a poll or stream request. sockjs-go lets go of a
// finished poll in a goroutine of its own; a client that polls again at
// once (as sockjs-client does after every message) can arrive before that
// and be told "Another connection still open" (2010), which ends its
// session. The countingWriter holds that answer back and the request is
// tried again a moment later; only a client that really holds two
// receiving requests open gets it.
func (h *handler) serveReceiving(cw *countingWriter, r *http.Request) {
	defer cw.within()
	for try := 1; ; try++ {
		cw.holdBusy = try < maxAttachTries
		cw.busy = false
		h.sockjs.ServeHTTP(cw, r)
		if !cw.busy || r.Context().Err() != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// readSendBody reads an xhr_send body whole, up to Options.MaxBodyBytes and
// within Options.ReadTimeout, and checks that it is a JSON array of
// strings, so that sockjs-go never accepts part of a body: a body too big
// answers 413, one too slow 408, a malformed one 400, and none delivers any
// message.
func (h *handler) readSendBody(w http.ResponseWriter, r *http.Request) bool {
	body, _, err := httpx.ReadBody(w, r, h.opts.MaxBodyBytes, h.opts.ReadTimeout)
	if err != nil {
		return false
	}
	var msgs []string
	if len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &msgs) != nil {
		httpx.BadRequest(w, "body is not a JSON array of strings")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}
