package session

import (
	"context"
	"time"

	"github.com/tetherkit/tether/wire"
)

// link is the Link of a connection attached to a Session held by this
// process.
type link struct {
	s          *Session
	transport  string
	acksInBand bool
	notifyFn   func() // AttachOptions.Notify
	sharedFn   func() // AttachOptions.NotifyShared

	// Guarded by s.mu.
	next      uint64 // number of the next message to hand out
	ackSent   uint64 // received count last put in a Batch
	gap       bool   // the attach could not be served: deliver only the close
	closeSent bool   // the close frame was handed out

	wake  chan struct{} // capacity 1: something to pull
	done  chan struct{} // closed when superseded or the session finished
	ended bool          // done is closed; guarded by s.mu

	// The acknowledgement delay, guarded by s.mu: while client messages
	// wait for an acknowledgement, either ackTimer runs (ackArmed) or it
	// has fired and the next Batch carries one (ackDue).
	ackTimer *time.Timer // fires ackTick ackDelay after the first unacknowledged client message
	ackArmed bool
	ackDue   bool
	ackSince time.Time // when ackTimer was armed

	timer  *time.Timer    // heartbeat wait, owned by the writer
	buf    []wire.Message // reused by Pull and Collect
	frames []*wire.Frames // reused likewise: the Frames of buf's messages, when one has them
}

// Batch is what a Link hands the transport to write, in this order:
// Messages (numbered First, First+1, ...), an acknowledgement when AckDue,
// then the close frame when Close is set. An empty batch (no messages, no
// ack, no close) means the heartbeat interval passed: send a heartbeat.
type Batch struct {
	First    uint64
	Messages []wire.Message
	AckDue   bool
	Received uint64
	Close    *wire.CloseError
	// Frames, when not empty, has one entry per message: the Frames
	// that Messages[i] shares with the other sessions it was queued to
	// (SendShared), nil for a message of this session's own. Transports
	// read it through SharedFrames.
	Frames []*wire.Frames
}

// SharedFrames returns the Frames that message i of the batch shares with
// other sessions, or nil when it has none: the transport then encodes the
// message itself.
func (b *Batch) SharedFrames(i int) *wire.Frames {
	if i < len(b.Frames) {
		return b.Frames[i]
	}
	return nil
}

// Empty reports whether b has nothing to send: the transport sends a
// heartbeat.
func (b *Batch) Empty() bool {
	return len(b.Messages) == 0 && !b.AckDue && b.Close == nil
}

// AttachOptions describe the connection being attached.
type AttachOptions struct {
	// Transport is the transport's name, reported by Session.Transport.
	Transport string
	// Received is how many messages the client says it has received.
	Received uint64
	// AcksInBand is set for bidirectional transports, which carry
	// acknowledgements of client messages in the downstream.
	AcksInBand bool
	// Notify, when set, is called whenever the link may have something
	// new to take with Collect: messages, an acknowledgement, a close, or
	// the end of the link. It is called with the session's lock held, so
	// it must only schedule the work (it must not call back into the
	// session or block). A link with Notify is not used with Pull.
	Notify func()
	// NotifyShared, when set with Notify, is called instead of Notify for
	// a message queued by SendShared (a topic's publish): once the
	// session's lock is released, on the goroutine that queued the
	// message, which goes on to the next session of the publish when it
	// returns. The transport may take the message with Collect and write
	// it there and then, when it can without waiting for the network: a
	// publish to many sessions then costs no goroutine switch per
	// session. It must never wait for the client; what it cannot write at
	// once it leaves to a goroutine of its own, as for Notify.
	NotifyShared func()
}

// Attach attaches a connection to the session; it supersedes the connection
// attached before, whose Pull then returns ErrSuperseded. Messages after
// opts.Received are replayed; the ones up to it count as acknowledged. If
// opts.Received counts messages never sent, the session closes with
// StatusResumeGap and the link delivers only the close frame. Attach
// returns ErrUnknownSession for a session that has ended or whose close
// frame a link has taken, and
// ErrStaleAttach, changing nothing, when opts.Received is below what the
// client has acknowledged already.
func (l *Local) Attach(opts AttachOptions) (Link, error) {
	s := l.Session
	ln := &link{
		s:          s,
		transport:  opts.Transport,
		acksInBand: opts.AcksInBand,
		notifyFn:   opts.Notify,
		done:       make(chan struct{}),
	}
	if ln.notifyFn == nil {
		ln.wake = make(chan struct{}, 1)
	} else {
		ln.sharedFn = opts.NotifyShared
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost != nil {
		return nil, s.lost
	}
	if s.finished || (s.link != nil && s.link.closeSent) {
		// A link that has taken the close frame finishes the session
		// when its connection ends (Detach), however the write went: an
		// attach made once the frame arrived, before that, finds the
		// session as closed as an attach made after.
		return nil, ErrUnknownSession
	}
	if opts.Received < s.clientAcked {
		// The client's received count only grows, and it has stated
		// s.clientAcked already: this request is older than that.
		return nil, ErrStaleAttach
	}
	var replayed uint64
	// Below s.acked (and not stale) only after Abort, which counts
	// undelivered messages as acknowledged: the link delivers its close.
	if opts.Received < s.acked || opts.Received > s.lastSendableLocked() {
		ln.gap = true
		s.closeLocked(wire.CloseError{Code: wire.StatusResumeGap, Reason: "resume gap"})
	} else {
		s.acknowledgeLocked(opts.Received)
		ln.next = opts.Received + 1
		if s.handedOut > opts.Received {
			replayed = s.handedOut - opts.Received
		}
	}
	// ln.ackSent stays 0: the client may not have seen an acknowledgement of
	// what earlier links accepted (the connection can break before one goes
	// out), so a new link owes it one: it goes out with the first batch
	// that has room for it, at the latest ackDelay from now.
	if ln.acksInBand && s.ackableLocked() != 0 {
		ln.ackLaterLocked()
	}
	if old := s.link; old != nil {
		old.end()
	}
	if o := s.cfg.Observer; o != nil {
		if s.link != nil {
			o.Detached(s.transport)
		}
		o.Attached(opts.Transport, s.lastTransport, replayed)
	}
	previous := s.transport
	if previous == "" {
		previous = s.lastTransport
	}
	s.connectionEventLocked(ConnectionEvent{Transport: opts.Transport, Previous: previous})
	s.link = ln
	s.forgetLocked()
	s.attachedOnce = true
	s.transport = opts.Transport
	s.lastTransport = opts.Transport
	if s.expiry != nil {
		s.expiry.Stop()
	}
	return ln, nil
}

// Done is closed when l is superseded or the session has finished.
func (l *link) Done() <-chan struct{} { return l.done }

func (l *link) notify() {
	if l.notifyFn != nil {
		l.notifyFn()
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// end closes done once. Called with s.mu held.
func (l *link) end() {
	if !l.ended {
		l.ended = true
		close(l.done)
		l.stopAckTimerLocked()
		if l.notifyFn != nil {
			l.notifyFn()
		}
	}
}

// received is called, with s.mu held, when the session has accepted a
// client message: an acknowledgement is due at once after ackEvery of them
// (the link is notified), and otherwise at most ackDelay after the first
// one nothing acknowledged. The delay is the link's, for both ways a
// transport takes from it (Pull and Collect): a transport keeps no
// acknowledgement timer of its own.
func (l *link) received() {
	if !l.acksInBand || l.ended {
		return
	}
	if l.s.ackableLocked()-l.ackSent >= ackEvery {
		l.notify()
		return
	}
	l.ackLaterLocked()
}

// ackLaterLocked starts the acknowledgement timer unless it runs already
// or has fired: a steady flow of client messages costs no timer operation
// per message. Called with s.mu held.
func (l *link) ackLaterLocked() {
	if l.ackArmed || l.ackDue {
		return
	}
	l.ackArmed = true
	l.ackSince = time.Now()
	if l.ackTimer == nil {
		l.ackTimer = time.AfterFunc(ackDelay, l.ackTick)
		return
	}
	l.ackTimer.Reset(ackDelay)
}

// ackTick makes the acknowledgement due and tells the transport. A tick
// whose Stop came too late may make it due a little early, which costs one
// acknowledgement frame and nothing else.
func (l *link) ackTick() {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !l.ackArmed {
		return
	}
	l.ackArmed = false
	if l.ended || s.ackableLocked() == l.ackSent {
		return
	}
	l.ackDue = true
	l.notify()
}

// ackRidesLocked reports whether an acknowledgement waiting for the timer
// goes out now, with the messages of a batch (sending): half of ackDelay
// has passed since the timer was armed. Called with s.mu held.
func (l *link) ackRidesLocked(sending bool) bool {
	return sending && l.ackArmed && time.Since(l.ackSince) >= ackDelay/2
}

// stopAckTimerLocked stops the acknowledgement timer: nothing waits for
// an acknowledgement any more. Called with s.mu held.
func (l *link) stopAckTimerLocked() {
	if l.ackArmed {
		l.ackArmed = false
		l.ackTimer.Stop()
	}
	l.ackDue = false
}

// Collect returns what there is to send now, without waiting: a Batch that
// is empty when there is nothing (Collect never asks for a heartbeat; the
// transport decides when one is due), within maxBytes as for Pull. An
// acknowledgement of client messages is due every ackEvery messages, and
// ackDelay after the first one nothing acknowledged (the link's timer
// notifies the transport then). The returned Messages are valid until the
// next Collect. Collect returns ErrSuperseded or ErrFinished when the link
// is over.
func (l *link) Collect(maxBytes int) (Batch, error) {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _, err := l.collectLocked(maxBytes, false)
	return b, err
}

// Pull waits for something to send and returns it, holding at most
// maxBytes of messages, each counting its data plus MessageOverhead (but
// always at least one message when one is waiting). After wait passes with nothing to send it returns an empty
// Batch. The returned Messages are valid until the next Pull. Pull returns
// ErrSuperseded or ErrFinished when the link is over, and ctx.Err() when
// ctx ends.
func (l *link) Pull(ctx context.Context, wait time.Duration, maxBytes int) (Batch, error) {
	s := l.s
	var timedOut bool
	deadline := time.Now().Add(wait)
	for {
		s.mu.Lock()
		b, ok, err := l.collectLocked(maxBytes, timedOut)
		s.mu.Unlock()
		if ok || err != nil {
			return b, err
		}
		d := time.Until(deadline)
		if d <= 0 {
			return Batch{}, nil
		}
		if l.timer == nil {
			l.timer = time.NewTimer(d)
		} else {
			l.timer.Reset(d)
		}
		select {
		case <-l.wake:
		case <-l.done:
		case <-ctx.Done():
			l.timer.Stop()
			return Batch{}, ctx.Err()
		case <-l.timer.C:
			timedOut = true
		}
		l.timer.Stop()
	}
}

// collectLocked fills a Batch. ok is false when there is nothing to send.
// An acknowledgement is due after ackEvery client messages, once the
// link's acknowledgement timer has fired (ackDue), or when idle (Pull's
// wait passed: it goes out instead of a heartbeat).
func (l *link) collectLocked(maxBytes int, idle bool) (b Batch, ok bool, err error) {
	s := l.s
	if l.ended {
		if s.lost != nil {
			return Batch{}, false, s.lost
		}
		if s.finished {
			return Batch{}, false, ErrFinished
		}
		return Batch{}, false, ErrSuperseded
	}
	if l.closeSent {
		return Batch{}, false, ErrFinished
	}
	if !l.gap {
		if l.next <= s.acked {
			l.next = s.acked + 1
		}
		l.buf, l.frames = l.buf[:0], l.frames[:0]
		start := int(l.next - s.acked - 1)
		end := len(s.out)
		if s.journal != nil {
			// Only what is stored goes out.
			end = int(max(s.stored, s.acked) - s.acked)
		}
		size, payload, shared := 0, 0, false
		for i := start; i < end; i++ {
			q := s.out[i]
			if len(l.buf) > 0 && size+queuedSize(q.Message) > maxBytes {
				break
			}
			l.buf = append(l.buf, q.Message)
			l.frames = append(l.frames, q.frames)
			shared = shared || q.frames != nil
			size += queuedSize(q.Message)
			payload += len(q.Data)
		}
		if len(l.buf) > 0 {
			b.First = l.next
			b.Messages = l.buf
			if shared {
				b.Frames = l.frames
			}
			l.next += uint64(len(l.buf))
			s.handedOut = max(s.handedOut, l.next-1)
			// What the client acknowledged ahead of this link can go now.
			s.forgetLocked()
			if o := s.cfg.Observer; o != nil {
				o.MessagesOut(l.transport, len(l.buf), payload)
			}
			ok = true
		}
	}
	// Not with every batch: an echo would then cost an acknowledgement
	// per reply. A burst is acknowledged every ackEvery messages, and
	// the rest ackDelay after its first message (the link's timer), or
	// with the first messages going out once half of that has passed:
	// under traffic both ways the acknowledgement rides in a write that
	// goes out anyway, and the timer, whose expiry costs a write of its
	// own (and, on a WebSocket, a message the client handles alone), is
	// stopped before it fires.
	if recv := s.ackableLocked(); l.acksInBand && recv != l.ackSent && (idle || l.ackDue || recv-l.ackSent >= ackEvery || l.ackRidesLocked(len(b.Messages) > 0)) {
		b.AckDue, b.Received = true, recv
		l.ackSent = recv
		l.stopAckTimerLocked()
		ok = true
	}
	if s.closeFrame != nil && (l.gap || l.next > s.acked+uint64(len(s.out))) {
		b.Close = s.closeFrame
		l.closeSent = true
		ok = true
	}
	return b, ok, nil
}

// Detach tells the session that l's connection is gone. If the close frame
// went out on it, the session ends; otherwise, unless another connection
// has attached since, the resume window starts.
func (l *link) Detach() {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != l {
		return
	}
	l.end()
	s.link = nil
	s.transport = ""
	if o := s.cfg.Observer; o != nil {
		o.Detached(l.transport)
	}
	if l.closeSent {
		s.finishLocked()
		return
	}
	s.connectionEventLocked(ConnectionEvent{Previous: l.transport})
	s.startExpiryLocked()
}
