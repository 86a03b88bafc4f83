package tether

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
)

// Options configure a Server. A nil *Options means every default; NewServer
// copies the struct, so changing it afterwards has no effect.
type Options struct {
	// AllowedOrigins lists the browser origins, besides the server's own,
	// allowed to negotiate, open a WebSocket and POST messages, as
	// "https://app.example.com". "*" allows every origin. Requests without
	// an Origin header (not from a browser) are always allowed. Default:
	// none, so same-origin only.
	AllowedOrigins []string

	// TrustForwardedProto makes the same-origin check take the request's
	// scheme from its X-Forwarded-Proto header, as a TLS-terminating proxy
	// in front sets it. Set it only when every request comes through such
	// a proxy, which sets or removes the header: otherwise any client
	// chooses the scheme it is checked against. Default false: a request
	// is https only when it reached this server over TLS.
	TrustForwardedProto bool

	// Authorize runs on every negotiate request, before a session exists.
	// The value it returns is kept as the session's RequestInfo.Auth. An
	// error refuses the session: an *AuthError chooses the status and
	// message; any other error answers 401 with its text. Default: every
	// request is allowed.
	Authorize func(r *http.Request) (any, error)

	// HeartbeatInterval is how often an idle connection carries a
	// heartbeat; a client that hears nothing for twice as long takes the
	// connection for dead and attaches again to its session (resumes).
	// Default 25s.
	HeartbeatInterval time.Duration

	// ResumeWindow is how long a session with no connection waits for its
	// client to attach again. Default 30s.
	ResumeWindow time.Duration

	// FirstAttachWindow is how long a new session waits for its client to
	// attach its first connection, after negotiate: a client that
	// negotiates and never attaches holds a session this long only. The
	// bundled clients attach at once (fast connect starts on long
	// polling); without fast connect they give each transport 5 s, and
	// the default leaves room for one whose requests vanish before the
	// next attaches. Default 10s, and at most ResumeWindow.
	FirstAttachWindow time.Duration

	// MaxMessageBytes is the largest message, either direction. Default
	// 64 KiB.
	MaxMessageBytes int

	// MaxBodyBytes is the largest upstream POST body. Default 1 MiB, and
	// at least MaxMessageBytes plus framing.
	MaxBodyBytes int

	// MaxQueuedBytes bounds, per session and direction, the bytes of
	// messages held: sent but not acknowledged by the client, and received
	// but not yet read. Each message counts its data's length plus
	// session.MessageOverhead. Default 4 MiB. A long-poll response
	// carries at most half of it, counted the same way.
	MaxQueuedBytes int

	// MaxQueuedBytesTotal bounds the bytes that the queues of all the
	// server's sessions hold together, in both directions, counted as
	// MaxQueuedBytes counts them. Over it, a message is let in only while
	// the queue it goes to (a session's to its client, or from it) stays
	// within its fair share: MaxQueuedBytesTotal divided among the live
	// sessions' queues (two each), at least session.MinFairShare (64 KiB);
	// an empty queue always takes one. A queue holding more meets what it
	// meets when full (to the client, the SlowConsumer policy: a close is
	// 4002 with reason "queue budget exhausted"; from the client, the
	// server reads no more until there is room), while the sessions
	// holding less go on. So the queues hold at most MaxQueuedBytesTotal
	// plus, for each live session, twice the larger of its fair share and
	// one message (see README, "Memory in total"). Server.QueuedBytes
	// tells what they hold. Default 1 GiB (DefaultMaxQueuedBytesTotal);
	// negative: no bound but MaxQueuedBytes per session, and nothing is
	// counted.
	MaxQueuedBytesTotal int64

	// SlowConsumer is what Send does when MaxQueuedBytes is reached.
	// Default session.SlowConsumerClose (close with 4002). The bound is
	// met not only by a client that reads slowly but by any burst of more
	// than MaxQueuedBytes sent faster than the network carries it: a
	// handler that streams bulk data should use session.SlowConsumerBlock,
	// which makes Send wait for acknowledgements instead.
	SlowConsumer session.SlowConsumerPolicy

	// MaxSessions bounds the sessions on this server; negotiate answers
	// 503 beyond it. It is the bound of the default Store; a Store of
	// one's own applies its own (Add returns session.ErrTooManySessions).
	// Default 100,000.
	MaxSessions int

	// Store is where the server keeps the sessions it holds (each a
	// *session.Local, added when negotiate creates it and removed when it
	// ends) and finds the session each attach and send request names:
	// Lookup returns the session.Endpoint that the request's transport
	// serves. A store shared by several servers may find a session held by
	// another one and return an Endpoint that relays to it; transports
	// serve it as they serve a session held here. A Store serves one
	// Server. Default: session.NewMemoryStore(MaxSessions), which finds
	// the sessions of this server only.
	Store session.Store

	// MaxSessionsPerClient, with ClientKey, bounds the sessions one client
	// holds at a time: negotiate answers 503 "too many sessions for this
	// client" beyond it (NewSession returns ErrTooManyForClient). A backstop
	// against one client filling MaxSessions, not a rate limit: rate-limit
	// negotiate at the proxy in front as well. Default 0: no limit.
	MaxSessionsPerClient int

	// ClientKey names the client a negotiate request comes from, for
	// MaxSessionsPerClient; it runs after Authorize, on requests it
	// allowed. For example the remote address without its port, the
	// address a trusted proxy in front forwards, or the user Authorize
	// identified (from the same request). Requests it gives the key ""
	// are not limited. Default: none, so no per-client limit.
	ClientKey func(r *http.Request) string

	// Transports lists the transports offered to clients, in the order they
	// should try them. Default: all of them, in the order of
	// transport.Names: "websocket", "sse", "streaming", "longpoll".
	Transports []string

	// MaxStreamBytes is how many bytes one sse or streaming response
	// carries before it ends, so that the browser frees its memory; the
	// client continues on a new response without losing anything. Default
	// 1 MiB, and at most half of MaxQueuedBytes: a stream client
	// acknowledges what it received when it opens its next response, so a
	// longer response would fill the queue of a client that keeps up and
	// set off the slow-consumer policy. A response whose client attached
	// with acks=1 (it acknowledges through send as it reads, as the
	// browser client does) has no limit (PROTOCOL.md section 4.5).
	MaxStreamBytes int

	// WriteTimeout bounds each write to a client connection: a write the
	// client does not take within it fails, and its connection ends (on a
	// streaming response, within it and at most an eighth more, as its
	// deadline moves at most every eighth of it). Default 10s.
	WriteTimeout time.Duration

	// ReadTimeout bounds reading the body of one send or negotiate
	// request, so that a client sending it a byte at a time, or announcing
	// more than it sends, holds nothing but its own request; such a
	// request answers 408 and its connection is closed. Default 10s.
	ReadTimeout time.Duration

	// Logger receives the server's structured logs: session opened and
	// closed at Info, protocol errors of clients at Warn, requests for
	// unknown sessions at Debug. The session token is never logged.
	// Default: slog's default logger.
	Logger *slog.Logger

	// Broker carries what Publish sends to the sessions subscribed to a
	// topic, and keeps who they are (Presence). A Broker serves one
	// Server; a cluster's Broker spans several servers, and Subscribe,
	// Publish and Presence reach every one of them. Default: a new
	// broker.Memory, in this process's memory.
	Broker broker.Broker

	// Cluster, if not nil, makes the server one node of a cluster (a
	// *cluster.Node): it gives the server its Store, which finds the
	// sessions of every node and relays to their owner, and its Broker;
	// the id of each session the server creates starts with the node's
	// id; MaxMessageBytes is at most what the cluster relays. Store and
	// Broker must then be nil: NewServer panics otherwise. Default: none,
	// a server of its own.
	Cluster Cluster

	// Observer, if not nil, is told what the server and its sessions do,
	// for metrics: package metrics gives Prometheus metrics through it.
	// Several servers may share one. Default: none.
	Observer Observer
}

// DefaultMaxQueuedBytesTotal is Options.MaxQueuedBytesTotal's default:
// 1 GiB.
const DefaultMaxQueuedBytesTotal = 1 << 30

// Cluster is what makes a Server one node of a cluster, as
// Options.Cluster: package cluster's *Node implements it. A Cluster serves
// one Server.
type Cluster interface {
	// ID returns the node's id, which starts the id of every session the
	// server creates (`<ID>.<random>`), so that every node tells a
	// session's owner from its id. It holds no dot.
	ID() string
	// Store returns the server's Store: the sessions this node holds, at
	// most maxSessions of them, and an Endpoint that relays to their owner
	// for the sessions of other nodes.
	Store(maxSessions int) session.Store
	// Broker returns the server's Broker.
	Broker() broker.Broker
	// MaxMessageBytes returns the largest message the cluster carries
	// between its nodes.
	MaxMessageBytes() int
}

// AuthError is returned by Options.Authorize to refuse a session with a
// status (401 or 403) and a message the client sees.
type AuthError struct {
	Status  int
	Message string
}

func (e *AuthError) Error() string { return e.Message }

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
		c.AllowedOrigins = append([]string(nil), o.AllowedOrigins...)
		c.Transports = append([]string(nil), o.Transports...)
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = session.DefaultHeartbeatInterval
	}
	if c.ResumeWindow <= 0 {
		c.ResumeWindow = session.DefaultResumeWindow
	}
	if c.FirstAttachWindow <= 0 {
		c.FirstAttachWindow = 10 * time.Second
	}
	c.FirstAttachWindow = min(c.FirstAttachWindow, c.ResumeWindow)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = session.DefaultMaxMessageBytes
	}
	if c.Cluster != nil {
		c.MaxMessageBytes = min(c.MaxMessageBytes, c.Cluster.MaxMessageBytes())
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	// Room for one message of the largest size, base64 and framed.
	c.MaxBodyBytes = max(c.MaxBodyBytes, c.MaxMessageBytes*4/3+64)
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = session.DefaultMaxQueuedBytes
	}
	if c.MaxQueuedBytesTotal == 0 {
		c.MaxQueuedBytesTotal = DefaultMaxQueuedBytesTotal
	}
	if c.MaxStreamBytes <= 0 {
		c.MaxStreamBytes = transport.DefaultMaxStreamBytes
	}
	c.MaxStreamBytes = min(c.MaxStreamBytes, max(c.MaxQueuedBytes/2, 4<<10))
	if c.MaxSessions <= 0 {
		c.MaxSessions = 100_000
	}
	if len(c.Transports) == 0 {
		c.Transports = transport.Names()
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
