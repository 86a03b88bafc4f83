package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tetherkit/tether/wire"
)

// Session is a Tether session seen from the client: the mirror of the
// server's session.Session. It outlives the connections under it; the
// messages sent and received on it are numbered and survive cuts.
//
// All methods are safe for concurrent use. Concurrent Send calls number
// their messages in the order they take the session's lock; concurrent Recv
// calls each get different messages.
type Session struct {
	opts       *Options
	hc         *http.Client
	ownHTTP    bool // hc was made by Dial and is closed at the end
	prefix     *url.URL
	neg        atomic.Pointer[negotiation] // replaced when a new session is negotiated (renegotiate)
	transports []clientTransport           // only the goroutine that attaches reads or writes it after Dial
	log        *slog.Logger

	ctx    context.Context // canceled when the session ends
	cancel context.CancelFunc

	out        *outbox
	inbox      chan wire.Message      // received messages waiting for Recv; nil with Options.OnMessage
	received   atomic.Uint64          // messages put in inbox: the attach's received
	recvSignal chan struct{}          // poked, without blocking, when a received message may need an acknowledgement
	ackedSent  atomic.Uint64          // the received count the WebSocket last acknowledged
	ws         atomic.Pointer[wsConn] // the WebSocket attached now, which Send writes to itself
	deliverMu  sync.Mutex             // one delivery at a time: the check that a message is new, Options.OnMessage
	gate       pollGate               // holds polls back while an upgrade attaches
	ackCeiling atomic.Uint64          // while an upgrade attaches: 1 + the received count its attach states; 0 otherwise
	idle       idleCuts               // idle cuts seen: the heartbeat interval in use (idle.go)
	// attached is set once a connection of the session is established (by
	// attempt); a request made before it answered 404 may start the fall
	// back to websocket alone, which clears it (balancer.go).
	attached atomic.Bool
	// fellBack is set once the session fell back to websocket alone (balancer.go).
	fellBack atomic.Bool
	// sendLimit is the largest send body a proxy took once it refused a
	// larger one (413): half the body refused. Every later send request of
	// the session, on every connection, stays within it; 0 until then.
	sendLimit atomic.Int64

	mu      sync.Mutex
	current string           // guarded by mu; the attached transport, "" when none
	endErr  *wire.CloseError // guarded by mu; set once, when ended is closed
	endedBy endCause         // guarded by mu
	ended   chan struct{}    // closed when the session is over
	done    chan struct{}    // closed when every goroutine of the session has exited

	// preferred is the transport tried first on the next attach. Only the
	// goroutine that attaches reads or writes it.
	preferred clientTransport
}

// endCause records who ended a session, for Close's result.
type endCause uint8

const (
	endedRemotely  endCause = iota // close frame from the server, expiry, protocol error
	endedByClose                   // the close frame from Close was delivered
	endedByTimeout                 // Close gave up waiting for delivery
)

// Dial negotiates a session with the server whose Tether prefix is url (for
// example "http://127.0.0.1:8080/rt/"), attaches its first connection and
// returns it. It tries the transports in order, each for at most
// Options.ConnectTimeout, and fails with an error wrapping ErrNoTransport if
// none works. ctx bounds Dial only: once Dial returns, the session lives
// until it is closed, whatever happens to ctx. A refused negotiate returns a
// *NegotiateError.
func Dial(ctx context.Context, url string, opts *Options) (*Session, error) {
	o := opts.cloneWithDefaults()
	prefix, err := normalizePrefix(url)
	if err != nil {
		return nil, err
	}
	hc, own := o.HTTPClient, false
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		own = true
	}
	fail := func(err error) (*Session, error) {
		if own {
			hc.CloseIdleConnections()
		}
		return nil, err
	}
	if err := checkTransportNames(o.Transports); err != nil {
		return fail(err)
	}
	neg, err := negotiate(ctx, hc, prefix, o.Header)
	if err != nil {
		return fail(err)
	}
	ts, err := chooseTransports(o.Transports, neg.Transports)
	if err != nil {
		release(ctx, hc, prefix, neg, o.ConnectTimeout)
		return fail(err)
	}
	s := &Session{
		opts:       o,
		hc:         hc,
		ownHTTP:    own,
		prefix:     prefix,
		transports: ts,
		log:        o.Logger.With("session", neg.Session),
		out:        newOutbox(o.MaxQueuedBytes),
		recvSignal: make(chan struct{}, 1),
		ended:      make(chan struct{}),
		done:       make(chan struct{}),
	}
	if o.OnMessage == nil {
		// With OnMessage, Recv returns only the session's end: a queue
		// would hold RecvBuffer messages' worth of memory per session for
		// nothing, and the garbage collector would scan it.
		s.inbox = make(chan wire.Message, o.RecvBuffer)
	}
	s.neg.Store(neg)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ac, err := s.connectFirst(ctx)
	if err != nil {
		var ce wire.CloseError
		if !errors.As(err, &ce) && ctx.Err() == nil {
			release(ctx, hc, prefix, neg, o.ConnectTimeout)
		}
		s.cancel()
		return fail(err)
	}
	go s.maintain(ac)
	return s, nil
}

// ID returns the public session id, safe to log and show. It changes when
// the client negotiates a new session (see Options.DisableReconnect).
func (s *Session) ID() string { return s.negotiated().Session }

// negotiated returns the negotiate answer of the session in use.
func (s *Session) negotiated() *negotiation { return s.neg.Load() }

// Transport returns the name of the transport attached now ("websocket",
// "sse", "streaming" or "longpoll"), or "" while the session is between
// connections or over.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Context returns a context canceled when the session ends, for work that
// should stop with it.
func (s *Session) Context() context.Context { return s.ctx }

// Done returns a channel closed once the session has ended and every
// goroutine it started has exited.
func (s *Session) Done() <-chan struct{} { return s.done }

// Send numbers m and queues it for the server; the session keeps it until
// the server acknowledges it and replays it after a cut. Send copies m.Data.
// On a WebSocket, Send writes the message itself when no other write is
// under way (it then returns once the write is done, or has failed: the
// connection is replaced and the message replayed); otherwise it only
// queues it for the write under way.
// It blocks while Options.MaxQueuedBytes of messages wait for
// acknowledgement, until ctx is done (returning ctx.Err() with m not sent).
// It fails with wire.ErrMessageTooBig or wire.ErrInvalidMessage without sending, and
// with a wire.CloseError once Close was called or the session ended.
func (s *Session) Send(ctx context.Context, m wire.Message) error {
	switch {
	case m.Type != wire.Text && m.Type != wire.Binary:
		return fmt.Errorf("%w: type %v", wire.ErrInvalidMessage, m.Type)
	case m.Type == wire.Text && !utf8.Valid(m.Data):
		return fmt.Errorf("%w: text is not valid UTF-8", wire.ErrInvalidMessage)
	case len(m.Data) > s.negotiated().MaxMessageBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", wire.ErrMessageTooBig, len(m.Data), s.negotiated().MaxMessageBytes)
	}
	m.Data = bytes.Clone(m.Data)
	if m.Data == nil {
		m.Data = []byte{}
	}
	err := s.out.push(ctx, s.ended, m)
	if errors.Is(err, errStopped) {
		return s.closeError()
	}
	if c := s.ws.Load(); c != nil && err == nil {
		c.flushFromSend()
	}
	return err
}

// Recv returns the next message from the server, waiting until one arrives
// or ctx is done. Once the session has ended, Recv returns the messages
// still queued and then the wire.CloseError saying how it ended.
func (s *Session) Recv(ctx context.Context) (wire.Message, error) {
	select {
	case m := <-s.inbox:
		return m, nil
	default:
	}
	select {
	case m := <-s.inbox:
		return m, nil
	case <-s.ended:
		select {
		case m := <-s.inbox:
			return m, nil
		default:
			return wire.Message{}, s.closeError()
		}
	case <-ctx.Done():
		return wire.Message{}, ctx.Err()
	}
}

// Close ends the session: it sends a close frame with code and reason
// after every message sent before it, waits until the frame is written and
// the connection has ended, then stops every goroutine of the session. It
// waits at most Options.CloseTimeout for that, attaching again if the
// connection breaks meanwhile, and returns an error wrapping
// context.DeadlineExceeded when the time runs out. A reason longer than
// wire.MaxReasonBytes is cut. If the session had already ended, Close
// returns the wire.CloseError that ended it; calling Close again after a
// successful Close returns nil.
func (s *Session) Close(code wire.StatusCode, reason string) error {
	if !code.Valid() {
		return fmt.Errorf("%w: %d", wire.ErrInvalidCloseCode, code)
	}
	ce := wire.CloseError{Code: code, Reason: wire.TruncateReason(reason)}
	s.out.close(ce)
	if c := s.ws.Load(); c != nil {
		c.wake()
	}
	t := time.NewTimer(s.opts.CloseTimeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.end(ce, endedByTimeout)
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.endedBy {
	case endedByClose:
		return nil
	case endedByTimeout:
		return fmt.Errorf("tether: close frame not delivered within %v: %w", s.opts.CloseTimeout, context.DeadlineExceeded)
	}
	return *s.endErr
}

// closeError returns the CloseError that ended the session, or for a
// session still closing the one Close sends.
func (s *Session) closeError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endErr != nil {
		return *s.endErr
	}
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	if s.out.closeReq != nil {
		return *s.out.closeReq
	}
	return errStopped
}

// end records how the session ended, the first time it is called, and
// stops the session's goroutines.
func (s *Session) end(ce wire.CloseError, by endCause) {
	s.mu.Lock()
	if s.endErr == nil {
		s.endErr = &ce
		s.endedBy = by
		close(s.ended)
		s.log.Info("tether session ended", "code", int(ce.Code), "reason", ce.Reason)
	}
	s.mu.Unlock()
	s.out.close(ce)
	s.cancel()
}

func (s *Session) setCurrent(name string) {
	s.mu.Lock()
	s.current = name
	s.mu.Unlock()
}
