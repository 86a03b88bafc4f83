package transport

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/tetherkit/tether/session"
)

// Transport carries a session's frames over one kind of connection.
//
// The server has already checked the request's origin and method (GET),
// found its session and parsed its parameters when it calls ServeAttach.
// ServeAttach attaches the connection to the session and serves it until it
// ends, then detaches it. A transport that takes the connection over from
// net/http (WebSocket) may return as soon as it is attached and serve it on
// a goroutine of its own, so that net/http releases the request; one that
// answers through w returns when the connection ends. Like an
// http.Handler, it must not use w after it returns.
type Transport interface {
	// Name is the transport's name in negotiate responses and URLs.
	Name() string
	// Bidirectional reports whether the connection also carries client
	// messages; the others get them through the upstream POST.
	Bidirectional() bool
	// ServeAttach serves one connection of a.Session.
	ServeAttach(w http.ResponseWriter, r *http.Request, a *Attach)
}

// ReceivedReader is implemented by a transport whose requests may state the
// client's received count in another way than the received parameter (SSE:
// the Last-Event-ID header a browser EventSource sends by itself). The
// server uses the larger of the two, and accepts a request with either.
type ReceivedReader interface {
	// Received returns the count r states, and false when it states none.
	Received(r *http.Request) (uint64, bool)
}

// MinHeartbeatInterval is the shortest heartbeat interval a client may ask
// for with the heartbeatMs parameter (PROTOCOL.md section 5.3).
const MinHeartbeatInterval = time.Second

// Attach is one request to attach a connection.
type Attach struct {
	// Session is the session to attach to: the one the request names,
	// found by the server.
	Session session.Endpoint
	// Received is the client's count of server messages received.
	Received uint64
	// Seq is the number of the first client message the connection will
	// carry (bidirectional transports only).
	Seq uint64
	// Config is the server's configuration.
	Config *Config
	// Probe is set by the parameter probe=1: a streaming transport answers
	// as it would (prelude and heartbeat) without attaching, so that the
	// client learns whether a proxy holds the stream back (ServeStream).
	Probe bool
	// Heartbeat is the connection's heartbeat interval, when the client
	// asked for a shorter one than Config.HeartbeatInterval with the
	// heartbeatMs parameter; zero means Config's.
	Heartbeat time.Duration
}

// HeartbeatInterval returns the heartbeat interval of a's connection: how
// long it may go without the server writing, and half of how long the
// server waits for the client before it takes a bidirectional connection
// for dead.
func (a *Attach) HeartbeatInterval() time.Duration {
	if a.Heartbeat > 0 {
		return a.Heartbeat
	}
	return a.Config.HeartbeatInterval
}

// Config is what transports need of the server's configuration. A Server
// fills every field from its Options (defaults applied) and shares one
// Config among its transports; it must not be changed after that.
type Config struct {
	// HeartbeatInterval is how long a connection may go without the
	// server writing, unless the client asked for a shorter one
	// (Attach.Heartbeat): Attach.HeartbeatInterval gives the one that
	// applies.
	HeartbeatInterval time.Duration
	// MaxMessageBytes is the largest message a client may send, in a send
	// request or on a WebSocket.
	MaxMessageBytes int
	// MaxBodyBytes is the largest body of a send request.
	MaxBodyBytes int
	// MaxPollBytes bounds the messages one long-poll response carries,
	// each counting its data's length plus session.MessageOverhead; a
	// response carries at least one message when one is waiting. Zero
	// means MaxBodyBytes. A Server sets half of its MaxQueuedBytes, so
	// that the messages a client acknowledges with its next poll are
	// never more than the queue holds.
	MaxPollBytes int
	// WriteTimeout bounds each write to a connection.
	WriteTimeout time.Duration
	// ReadTimeout bounds reading one send request's body; zero means no
	// bound.
	ReadTimeout time.Duration
	// Logger, if not nil, receives clients' protocol errors at Warn (see
	// Warn); nil logs nothing.
	Logger *slog.Logger
}

// Warn logs a client's protocol error on session s at Warn: never the token.
func (cfg *Config) Warn(msg string, s session.Endpoint, r *http.Request, err error) {
	cfg.WarnRemote(msg, s, r.RemoteAddr, err)
}

// WarnRemote is Warn for a connection that outlived its request: remote is
// the request's RemoteAddr.
func (cfg *Config) WarnRemote(msg string, s session.Endpoint, remote string, err error) {
	if cfg.Logger != nil {
		cfg.Logger.Warn(msg, "session", s.ID(), "remote", remote, "err", err)
	}
}
