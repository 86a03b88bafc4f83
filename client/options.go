package client

import (
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tetherkit/tether/wire"
)

// Options configure Dial. A nil *Options means every default; Dial clones the
// struct and never changes the caller's copy.
type Options struct {
	// Transports lists the transports to try, in order, by their names in
	// PROTOCOL.md: "websocket", "sse", "streaming", "longpoll". Names the
	// server does not offer are skipped; a name this client does not know
	// makes Dial fail.
	// Default: the server's offer order, restricted to the transports this
	// client knows.
	Transports []string

	// Header is sent with the negotiate request, for the server's auth hook
	// (for example Authorization). Later requests authenticate with the
	// session token instead. Default: none.
	Header http.Header

	// HTTPClient carries negotiate, long polls and sends. Default: a client
	// private to the session, whose idle connections are closed when the
	// session ends. A client given here is used as is and never closed.
	HTTPClient *http.Client

	// Dialer opens WebSocket connections; Dial copies it. Default: a Dialer
	// that takes its proxy from the environment, as net/http does.
	Dialer *websocket.Dialer

	// ConnectTimeout bounds one attempt to attach over one transport, from
	// the first byte sent until the connection is proven to work, and each
	// negotiate of a session negotiating anew (Dial's is bounded by its
	// context). Default: 10 seconds.
	ConnectTimeout time.Duration

	// StreamStartTimeout is how long an sse or streaming response may take
	// to deliver its first heartbeat, which the server sends at once; a
	// slower one is held back by a buffering proxy, and the client tries
	// the next transport. Default: DefaultStreamStartTimeout (5 seconds).
	StreamStartTimeout time.Duration

	// MinDelay is the delay before the second round of attempts to attach,
	// both when resuming after a cut and when reconnecting with a new
	// session (the first round after a cut starts at once); the delay
	// doubles each round, with jitter, up to MaxDelay. The JavaScript
	// client's minDelay. Default: 250 milliseconds.
	MinDelay time.Duration

	// MaxDelay caps the delay between rounds of attempts. The JavaScript
	// client's maxDelay. Default: 10 seconds.
	MaxDelay time.Duration

	// MaxQueuedBytes is the client's queue limit, as the server's
	// Options.MaxQueuedBytes is the server's: it bounds the payload bytes
	// of messages sent but not yet acknowledged by the server; Send blocks
	// while the bound is reached. A single message larger than the bound
	// is accepted when nothing else waits. Default: 1 MiB.
	MaxQueuedBytes int

	// RecvBuffer is how many received messages wait for Recv before the
	// client stops reading from the connection; unused with OnMessage.
	// Default: 256.
	RecvBuffer int

	// OnMessage, if set, is called for each message from the server
	// instead of queuing it for Recv, as session.Session.OnMessage does on
	// the server: in order, one call at a time, on the goroutine that read
	// the message, with no goroutine switch. It should return promptly:
	// the connection reads nothing more until it does. It may Send (on a
	// WebSocket the message is then written by that goroutine). Recv then
	// returns only the session's end.
	OnMessage func(m wire.Message)

	// DisableUpgrade turns off fast connect (PROTOCOL.md section 10): by
	// default, when long polling is among the transports with others, the
	// session attaches long polling first, which proves itself with one
	// send request, and then probes the transports before it in the order
	// (sse and streaming with probe=1, which attaches nothing); the first
	// that works takes over, with nothing lost, and a round that leaves the
	// session on a transport after the first is followed by another, from
	// 2 to 4 s later up to about a minute apart (PROTOCOL.md 10.2, step 4).
	// With DisableUpgrade the
	// transports are tried one after another, each for up to
	// ConnectTimeout (a stream: StreamStartTimeout for its first
	// heartbeat). The JavaScript client's upgrade: false. Default: false.
	DisableUpgrade bool

	// DisableReconnect turns off reconnecting, what the client does by
	// default after the server closes the session with a code whose
	// StatusCode.Reconnects is true (1001, 1011, 1012, 1013, 4006): negotiate a
	// new session, after MinDelay and up to MaxDelay between attempts, and
	// go on with it (Session.ID changes; messages the old session had not
	// acknowledged are dropped, as by the JavaScript client, and messages
	// sent from the moment OnReconnecting is called go to the new
	// session). With DisableReconnect, the session ends with that code
	// instead. It does not stop resuming after a cut. The JavaScript
	// client's reconnect: false. Default: false.
	DisableReconnect bool

	// OnResuming, if set, is called when the connection is lost without a
	// close frame and the client starts attaching again to the same
	// session, which goes on with nothing lost if it succeeds within the
	// server's resume window: the JavaScript client's resuming event. It
	// is called once per cut, whatever the number of attempts. It runs on
	// the goroutine that attaches, and should return promptly. Default:
	// none.
	OnResuming func()

	// OnResumed, if set, is called once a connection is attached again to
	// the same session after OnResuming: the JavaScript client's resumed
	// event. It is not called when resuming fails (the session then ends
	// with StatusSessionExpired or StatusSessionUnknown). It runs on the
	// goroutine that attaches, and should return promptly. Default: none.
	OnResumed func()

	// OnReconnecting, if set, is called when the server closed the
	// session with ce, a code after which the client negotiates a new
	// session (StatusCode.Reconnects), before it does: the JavaScript
	// client's reconnecting event. A lost connection is no reconnect (see
	// OnResuming). It runs on the goroutine that attaches, and should
	// return promptly. Default: none.
	OnReconnecting func(ce wire.CloseError)

	// OnError, if set, is called for every failed attempt to negotiate a
	// new session, to attach a connection or to probe a stream, and for the
	// request answered 404 that ends a session with StatusSessionUnknown
	// (an attach, a poll or a send that reached a server without the
	// session) or that starts its fall back to websocket alone (see the
	// package doc, Ending), with what failed: the JavaScript client's error
	// event. It
	// runs on the goroutine that attaches or reads, and should return
	// promptly. Default: none.
	OnError func(e *AttemptError)

	// CloseTimeout bounds how long Close waits for the close frame to reach
	// the server before it gives up and stops the session anyway. Default:
	// 5 seconds.
	CloseTimeout time.Duration

	// Logger receives connection events (attach, cut, fallback) at Debug and
	// Info level. The session token is never logged. Default: no logging.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	defaultConnectTimeout = 10 * time.Second
	defaultMinDelay       = 250 * time.Millisecond
	defaultMaxDelay       = 10 * time.Second
	defaultMaxQueuedBytes = 1 << 20
	defaultRecvBuffer     = 256
	defaultCloseTimeout   = 5 * time.Second
)

// cloneWithDefaults returns a copy of o with every zero field set to its
// default. It never changes o.
func (o *Options) cloneWithDefaults() *Options {
	var c Options
	if o != nil {
		c = *o
	}
	c.Transports = slices.Clone(c.Transports)
	c.Header = c.Header.Clone()
	if c.Dialer == nil {
		c.Dialer = &websocket.Dialer{Proxy: http.ProxyFromEnvironment}
	} else {
		d := *c.Dialer
		c.Dialer = &d
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
	if c.StreamStartTimeout <= 0 {
		c.StreamStartTimeout = DefaultStreamStartTimeout
	}
	if c.MinDelay <= 0 {
		c.MinDelay = defaultMinDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = defaultMaxDelay
	}
	if c.MaxDelay < c.MinDelay {
		c.MaxDelay = c.MinDelay
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = defaultMaxQueuedBytes
	}
	if c.RecvBuffer <= 0 {
		c.RecvBuffer = defaultRecvBuffer
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &c
}
