package session

import (
	"context"
	"fmt"

	"github.com/tetherkit/tether/wire"
)

// Recv returns the next message from the client. Once the session has
// closed and every message received before the close has been returned,
// Recv returns the CloseError. If ctx ends first, Recv returns ctx.Err().
func (s *Session) Recv(ctx context.Context) (wire.Message, error) {
	s.mu.Lock()
	for {
		if len(s.in) > 0 {
			m := s.in[0]
			s.in[0] = wire.Message{}
			s.in = s.in[1:]
			if len(s.in) == 0 {
				s.in = s.in[:0:0]
			}
			s.inBytes -= queuedSize(m)
			s.releaseInLocked(queuedSize(m))
			s.inSpace.broadcast()
			s.mu.Unlock()
			return m, nil
		}
		if s.fault != nil {
			// Every message before the client's fault is handled.
			s.closeLocked(*s.fault)
		}
		if s.closeErr != nil {
			err := s.errLocked()
			s.mu.Unlock()
			return wire.Message{}, err
		}
		ready := s.inReady.wait()
		s.inWaiting = true
		s.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			// ctx may be the session's own context, canceled by the
			// close that also made messages or the CloseError ready:
			// those win.
			s.mu.Lock()
			s.inWaiting = false
			if len(s.in) == 0 && s.closeErr == nil && s.fault == nil {
				s.mu.Unlock()
				return wire.Message{}, ctx.Err()
			}
			continue
		}
		s.mu.Lock()
		s.inWaiting = false
	}
}

// Received returns how many client messages the session has accepted.
func (s *Session) Received() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// Deliver hands the session client messages numbered seq, seq+1, ...
// Messages it already has are dropped, so a retried delivery is harmless;
// a seq beyond the next expected number faults the session with
// StatusResumeGap (see Fault) and returns ErrSequenceGap. While Config.MaxQueuedBytes of
// received messages wait for Recv, or the server's Config.QueueBudget
// refuses the next one (see QueueBudget), Deliver waits for room until ctx
// ends (and returns ctx's error, wrapped in ErrQueueBudget when the budget
// refused).
// With a message callback (OnMessage), Deliver instead calls it for each new
// message, in order, before it returns. Deliver keeps msgs' Data: callers
// must not reuse it. It returns the session's CloseError when the session
// has closed.
//
// With a journal, Deliver returns once the received count that covers
// msgs is stored, together with what the message callbacks sent meanwhile
// (package doc, "Durable sessions"); if ctx ends first, it returns an
// error wrapping ErrUnreachable (the client sends them again, and the
// duplicates are dropped).
func (l *Local) Deliver(ctx context.Context, seq uint64, msgs []wire.Message) error {
	s := l.Session
	if seq == 0 {
		return fmt.Errorf("%w: message numbers start at 1", ErrSequenceGap)
	}
	// One delivery at a time, so that callbacks see messages in order and
	// never two at once.
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.mu.Lock()
	fn := s.onMessage
	if fn == nil {
		_, accepted, size, err := s.admitLocked(ctx, seq, msgs, true)
		s.countIn(accepted, size)
		if err == nil && s.journal != nil && len(msgs) > 0 {
			err = s.waitStoredLocked(ctx, min(s.received, seq+uint64(len(msgs))-1), 0)
		}
		s.mu.Unlock()
		return err
	}
	// A fault found while admitting msgs waits for the callbacks of the
	// ones before it.
	s.delivering = true
	if s.journal != nil {
		// What the callbacks send is written with the received count,
		// in one Write: neither is written before they return.
		s.holding = true
		s.holdSent, s.holdRecv = s.acked+uint64(len(s.out)), s.received
	}
	first, accepted, size, err := s.admitLocked(ctx, seq, msgs, false)
	s.countIn(accepted, size)
	s.mu.Unlock()
	for _, m := range msgs[first : first+accepted] {
		fn(m)
	}
	s.mu.Lock()
	s.delivering = false
	if s.journal != nil {
		s.holding = false
		s.journalLocked()
		if err == nil && len(msgs) > 0 {
			err = s.waitStoredLocked(ctx, min(s.received, seq+uint64(len(msgs))-1), s.acked+uint64(len(s.out)))
		}
	}
	if s.fault != nil {
		s.closeLocked(*s.fault)
	}
	s.mu.Unlock()
	return err
}

// countIn tells the observer of accepted messages, before Recv can return
// them. Called with mu held.
func (s *Session) countIn(accepted, size int) {
	if o := s.cfg.Observer; o != nil && accepted > 0 {
		o.MessagesIn(s.lastTransport, accepted, size)
	}
}

// admitLocked numbers msgs (the first is seq), drops the ones already
// received and accepts the rest: into the queue Recv reads when queue is
// set (waiting for room there until ctx ends), or only counted, for the
// caller to hand a callback; those are msgs[first:first+accepted].
func (s *Session) admitLocked(ctx context.Context, seq uint64, msgs []wire.Message, queue bool) (first, accepted, size int, err error) {
	first = -1
	for i := 0; i < len(msgs); {
		if s.fault != nil {
			return max(first, 0), accepted, size, *s.fault
		}
		if s.closeErr != nil {
			return max(first, 0), accepted, size, s.errLocked()
		}
		num := seq + uint64(i)
		if num <= s.received {
			i++
			continue
		}
		if num > s.received+1 {
			s.faultLocked(wire.CloseError{Code: wire.StatusResumeGap, Reason: "sequence gap"})
			return max(first, 0), accepted, size, fmt.Errorf("%w: message %d arrived, %d expected", ErrSequenceGap, num, s.received+1)
		}
		m := msgs[i]
		if len(m.Data) > s.cfg.MaxMessageBytes {
			s.faultLocked(wire.CloseError{Code: wire.StatusMessageTooBig, Reason: "message too big"})
			return max(first, 0), accepted, size, wire.ErrMessageTooBig
		}
		if queue {
			n := queuedSize(m)
			full := s.inBytes+n > s.cfg.MaxQueuedBytes && len(s.in) > 0
			if full || !s.cfg.QueueBudget.take(n, s.inBytes) {
				room := s.inSpace.wait()
				s.mu.Unlock()
				err := waitRoom(ctx, room, !full)
				s.mu.Lock()
				if err != nil {
					return max(first, 0), accepted, size, err
				}
				continue // look again: the session may have closed meanwhile
			}
			s.in = append(s.in, m)
			s.inBytes += n
			s.inReady.broadcast()
		}
		if first < 0 {
			first = i
		}
		s.received++
		accepted++
		size += len(m.Data)
		i++
		if s.link != nil && s.journal == nil {
			s.link.received()
		}
	}
	return max(first, 0), accepted, size, nil
}

// OnMessage makes the session hand each message from the client to fn
// instead of queuing it for Recv: in order, one call at a time, on the
// goroutine that delivers it (a WebSocket connection's reader, or the
// request that uploaded it), before the session reads further from that
// client. Messages already queued are handed to fn first, by OnMessage
// itself. fn should return promptly: while it runs, its client's later
// messages wait (and so does the connection's read of them, acknowledgements
// included: under SlowConsumerBlock a Send in fn that finds the queue full
// waits until its ctx ends). Recv then returns only the CloseError, once
// the session has closed.
//
// With OnMessage and OnClose an application serves a session with no
// goroutine of its own; the session's Context still ends when it closes.
// OnMessage may be called once; later calls are ignored.
func (s *Session) OnMessage(fn func(wire.Message)) {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.mu.Lock()
	if s.onMessage != nil {
		s.mu.Unlock()
		return
	}
	s.onMessage = fn
	queued := s.in
	s.releaseInLocked(s.inBytes)
	s.in, s.inBytes = nil, 0
	s.inSpace.broadcast()
	s.mu.Unlock()
	for _, m := range queued {
		fn(m)
	}
}

// OnClose arranges for fn to be called once, with the session's
// CloseError, when the session closes (from either side, or because the
// client did not come back within the resume window): after every message
// callback has returned, in a goroutine of its own. On a session that has
// closed already, fn is called at once (in its goroutine). OnClose may be
// called once; later calls are ignored.
func (s *Session) OnClose(fn func(err error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onClose != nil || s.closeSet {
		return
	}
	s.closeSet = true
	s.onClose = fn
	if s.ctx.Err() != nil {
		s.closedLocked()
	}
}
