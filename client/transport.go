package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/wire"
)

// A clientTransport attaches connections of one kind to a session. Adding a
// transport takes one file implementing this interface, its name in
// transport.Names, and one entry in knownTransports.
type clientTransport interface {
	// name is the transport's name in negotiate and Options.Transports.
	name() string
	// run attaches one connection and carries frames on it until the
	// connection breaks, the session ends or ctx is done. It calls
	// l.established once the connection is proven to work. It returns only
	// after every goroutine it started has exited. An *endError means the
	// session is over; any other error means only that this connection
	// broke and the session may attach again.
	run(ctx context.Context, l *link) error
}

// knownTransports are the transports this client implements: one for each
// name in transport.Names, in that order.
var knownTransports = []clientTransport{
	websocketTransport{},
	sseTransport,
	streamingTransport,
	longpollTransport{},
}

// checkTransportNames fails for a name in want that no known transport has.
func checkTransportNames(want []string) error {
	for _, name := range want {
		if !slices.ContainsFunc(knownTransports, func(t clientTransport) bool { return t.name() == name }) {
			return fmt.Errorf("%w: %q", ErrUnknownTransport, name)
		}
	}
	return nil
}

// chooseTransports returns the transports to try, in order: want (or, when
// want is empty, the server's offer order) restricted to those offered and
// known.
func chooseTransports(want, offered []string) ([]clientTransport, error) {
	byName := make(map[string]clientTransport, len(knownTransports))
	for _, t := range knownTransports {
		byName[t.name()] = t
	}
	isOffered := make(map[string]bool, len(offered))
	for _, name := range offered {
		isOffered[name] = true
	}
	order := offered
	if len(want) > 0 {
		if err := checkTransportNames(want); err != nil {
			return nil, err
		}
		order = want
	}
	var ts []clientTransport
	seen := make(map[string]bool)
	for _, name := range order {
		t := byName[name]
		if t == nil || !isOffered[name] || seen[name] {
			continue
		}
		seen[name] = true
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("%w: server offers %q", ErrNoTransport, offered)
	}
	return ts, nil
}

// link is what a transport sees of the session while it carries one
// connection.
type link struct {
	s *Session
	// received is how many server messages the session had received when
	// the attach started: the attach's received parameter.
	received uint64
	// seq is the number of the first client message the connection
	// carries: the attach's seq parameter.
	seq uint64
	// initial holds the unacknowledged messages from seq on, taken with seq
	// so that an acknowledgement arriving before the first write cannot drop
	// a message the connection must still carry.
	initial window

	// n counts the messages the connection carried, from the received
	// count its request stated (each poll and each stream response states
	// its own): those up to the session's received count were already
	// delivered by another connection, when two overlap during an upgrade.
	// Only the goroutine that reads the connection uses it.
	n uint64

	// hb is the connection's heartbeat interval, asked for with
	// heartbeatMs when shorter than the negotiated one (idle.go).
	hb time.Duration
	// active is when the connection last carried something, in Unix
	// nanoseconds: on a WebSocket a read or a write; on the others, the
	// start of the wait for the next response or bytes.
	active atomic.Int64

	// early is set when the link was made before the session first
	// attached: the first request of each of its loops (a poll, a stream
	// response, a send, the handshake) counts as made before it
	// (balancer.go), even if another request of the link attaches it
	// first.
	early bool

	estOnce sync.Once
	est     chan struct{} // closed by established
}

func (s *Session) newLink() *link {
	seq := s.out.next()
	w, _ := s.out.view(seq, 0) // cannot fail: seq is the first unacknowledged
	received := s.received.Load()
	l := &link{
		s:        s,
		received: received,
		n:        received,
		seq:      seq,
		initial:  w,
		early:    !s.attached.Load(),
		hb:       s.heartbeat(),
		est:      make(chan struct{}),
	}
	l.touch(time.Now())
	return l
}

// established records that the connection works; the attempt that started
// it then counts as a success.
func (l *link) established() {
	l.estOnce.Do(func() { close(l.est) })
}

// isEstablished reports whether established was called.
func (l *link) isEstablished() bool {
	select {
	case <-l.est:
		return true
	default:
		return false
	}
}

// query returns the session parameter, plus received and seq when they
// are not negative; the token goes in the Tether-Token header.
func (l *link) query(received, seq int64) url.Values {
	q := url.Values{"session": {l.s.negotiated().Session}}
	if received >= 0 {
		q.Set("received", strconv.FormatInt(received, 10))
	}
	if seq >= 0 {
		q.Set("seq", strconv.FormatInt(seq, 10))
	}
	if hb := l.heartbeatParam(); hb != "" {
		q.Set("heartbeatMs", hb)
	}
	return q
}

// deliver handles one frame from the server, in connection order: a message
// goes to Recv's queue and is counted (waiting while the queue is full, until
// ctx is done), an acknowledgement frees the outbox, a close frame ends the
// session. After Close was called, messages are dropped uncounted.
func (l *link) deliver(ctx context.Context, f wire.Frame) error {
	s := l.s
	switch {
	case f.IsMessage():
		if s.out.closing() {
			return nil
		}
		l.n++
		s.deliverMu.Lock()
		defer s.deliverMu.Unlock()
		if l.n <= s.received.Load() {
			return nil // delivered by the connection this one superseded
		}
		if fn := s.opts.OnMessage; fn != nil {
			fn(f.Message)
			s.countReceived()
			return nil
		}
		select {
		case s.inbox <- f.Message:
			s.countReceived()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case f.Type == wire.FrameAck:
		if err := s.out.ack(f.Received); err != nil {
			return protocolError(wire.StatusProtocolError, err.Error())
		}
	case f.Type == wire.FrameClose:
		return &endError{ce: f.Close}
	}
	return nil
}

// parseError turns an error from the frame parsers into the end of the
// session: 1009 for a message over the limit, 4003 for anything else.
func parseError(err error) error {
	if errors.Is(err, wire.ErrMessageTooBig) {
		return protocolError(wire.StatusMessageTooBig, "message from server too big")
	}
	return protocolError(wire.StatusProtocolError, wire.TruncateReason(err.Error()))
}

// firstEnd returns the first *endError among errs, preferring one for a
// close the client sent, or else the first non-nil error.
func firstEnd(errs ...error) error {
	var end, other error
	for _, err := range errs {
		var ee *endError
		switch {
		case errors.As(err, &ee) && ee.local:
			return err
		case ee != nil && end == nil:
			end = err
		case err != nil && other == nil:
			other = err
		}
	}
	if end != nil {
		return end
	}
	return other
}

// countReceived counts one more message handed to the application. The
// WebSocket writer acknowledges every ackEvery messages (its reader arms a
// timer for the end of a burst): it needs waking only then.
func (s *Session) countReceived() {
	if r := s.received.Add(1); r-s.ackedSent.Load() >= ackEvery {
		select {
		case s.recvSignal <- struct{}{}:
		default:
		}
	}
}
