package session

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/tetherkit/tether/wire"
)

// Send queues m for the client and returns once it is queued, not when it is
// delivered. The session keeps its own copy of m.Data until the client
// acknowledges it, so the caller may reuse m.Data.
//
// When the client has not acknowledged Config.MaxQueuedBytes of messages
// (each counting its data's length plus MessageOverhead), or the server's
// Config.QueueBudget refuses the message (see QueueBudget), Send follows
// the slow-consumer policy: it closes the session (and returns its
// CloseError: StatusSlowConsumer, with reason ReasonQueueBudget when the
// budget refused), returns ErrDropped (wrapping ErrQueueBudget when the
// budget refused), or waits for room until ctx ends.
// A Send made while a message callback (OnMessage) runs never waits, as
// the acknowledgements that would make room may be held up behind the
// callback: under SlowConsumerBlock the queue then goes over
// MaxQueuedBytes, up to twice it, and past that, or when the budget
// refuses, the session closes as under SlowConsumerClose.
// After the session closes, Send returns the CloseError.
func (s *Session) Send(ctx context.Context, m wire.Message) error {
	if err := s.cfg.CheckMessage(m); err != nil {
		return err
	}
	data := make([]byte, len(m.Data))
	copy(data, m.Data)
	size := len(data) + MessageOverhead
	s.mu.Lock()
	for {
		if s.closeFrame != nil || s.finished {
			err := s.errLocked()
			s.mu.Unlock()
			return err
		}
		policy := s.cfg.SlowConsumer
		full := s.outBytes+size > s.cfg.MaxQueuedBytes && len(s.out) > 0
		if full && policy == SlowConsumerBlock && s.delivering {
			// A message callback is running: the connection that would
			// bring the acknowledgements making room may be the one
			// waiting for it to return (a WebSocket's reader, a client's
			// one send request in flight), and a journaled session holds
			// what it sends until it returns, so waiting might never end.
			// The queue goes over instead, up to twice the bound.
			full = s.outBytes+size > 2*s.cfg.MaxQueuedBytes
			if full {
				policy = SlowConsumerClose
			}
		}
		if !full && s.cfg.QueueBudget.take(size, s.outBytes) {
			break
		}
		// Refused by the queue, or else by the server's budget, which a
		// callback's Send does not wait for either.
		budget := !full
		if budget && policy == SlowConsumerBlock && s.delivering {
			policy = SlowConsumerClose
		}
		switch policy {
		case SlowConsumerDrop:
			s.dropped++
			if o := s.cfg.Observer; o != nil {
				o.Dropped()
			}
			s.mu.Unlock()
			if budget {
				return errDroppedBudget
			}
			return ErrDropped
		case SlowConsumerBlock:
			room := s.spaceFree.wait()
			s.mu.Unlock()
			if err := waitRoom(ctx, room, budget); err != nil {
				return err
			}
			s.mu.Lock()
		default:
			s.closeSlowLocked(budget)
			err := *s.closeErr
			s.mu.Unlock()
			return err
		}
	}
	s.queueLocked(wire.Message{Type: m.Type, Data: data}, nil)
	s.mu.Unlock()
	return nil
}

// closeSlowLocked closes the session for a message its queue to the
// client refused: with ReasonQueueBudget when the server's budget refused
// it (budget), with "slow consumer" when its own queue is full.
func (s *Session) closeSlowLocked(budget bool) {
	if budget {
		s.closeLocked(overBudget)
		return
	}
	s.closeLocked(slowConsumer)
}

// queueLocked appends m, and the frames it shares with other sessions
// (nil for a message of its own), to the messages for the client, and
// notifies the attached link; with a journal, it has m written first (the
// link is notified once it is stored).
func (s *Session) queueLocked(m wire.Message, frames *wire.Frames) {
	s.appendLocked(m, frames)
	s.queuedLocked()
}

// queuedLocked has the message just appended written to the journal, or
// notifies the attached link of it.
func (s *Session) queuedLocked() {
	if s.journal != nil {
		s.journalLocked()
		return
	}
	if s.link != nil {
		s.link.notify()
	}
}

// appendLocked appends m, and the frames it shares with other sessions, to
// the messages for the client, without notifying the link.
func (s *Session) appendLocked(m wire.Message, frames *wire.Frames) {
	s.out = append(s.out, queued{Message: m, frames: frames})
	s.outBytes += queuedSize(m)
}

// CheckMessage returns the error Send returns for m before it looks at the
// queue: wire.ErrInvalidMessage for a type other than Text and Binary or
// for Text that is not valid UTF-8, wire.ErrMessageTooBig for more than
// MaxMessageBytes of data (the default when cfg is nil or leaves it zero);
// nil for a message Send may queue.
func (cfg *Config) CheckMessage(m wire.Message) error {
	limit := DefaultMaxMessageBytes
	if cfg != nil && cfg.MaxMessageBytes > 0 {
		limit = cfg.MaxMessageBytes
	}
	switch {
	case m.Type != wire.Text && m.Type != wire.Binary:
		return fmt.Errorf("%w: type %v", wire.ErrInvalidMessage, m.Type)
	case len(m.Data) > limit:
		return fmt.Errorf("%w: %d bytes, limit %d", wire.ErrMessageTooBig, len(m.Data), limit)
	case m.Type == wire.Text && !utf8.Valid(m.Data):
		return fmt.Errorf("%w: text is not valid UTF-8", wire.ErrInvalidMessage)
	}
	return nil
}

// Acknowledge records that the client has received the first received
// messages, so the session can forget them. A count below an earlier one is
// ignored; a count above the number of messages sent returns ErrBadAck
// (with a journal: above the number stored, which is all a client can have
// received).
func (l *Local) Acknowledge(received uint64) error {
	s := l.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acknowledgeLocked(received)
}

func (s *Session) acknowledgeLocked(received uint64) error {
	if s.lost != nil {
		return s.lost
	}
	if last := s.lastSendableLocked(); received > last {
		return fmt.Errorf("%w: %d acknowledged, %d sent", ErrBadAck, received, last)
	}
	s.clientAcked = max(s.clientAcked, received)
	s.forgetLocked()
	if s.journal != nil && s.clientAcked-s.storedAcked >= journalAckEvery {
		s.journalLocked()
	}
	return nil
}

// forgetLocked drops the messages the client has acknowledged, except
// those the attached connection has yet to hand out. A client counts a
// connection's messages from its attach's received count on (PROTOCOL.md
// 5.1), so the connection carries every message after that count, even
// ones the client has acknowledged meanwhile, having read them on an
// earlier connection (a long poll answered while a WebSocket attached):
// skipping them would make the client count the next message as one it
// already has, and drop it.
func (s *Session) forgetLocked() {
	upTo := s.clientAcked
	if l := s.link; l != nil && !l.gap {
		upTo = min(upTo, l.next-1)
	}
	if upTo <= s.acked {
		return
	}
	n := int(upTo - s.acked)
	released := 0
	for i := range n {
		released += queuedSize(s.out[i].Message)
	}
	s.outBytes -= released
	s.cfg.QueueBudget.add(-released)
	clear(s.out[:n])
	if n == len(s.out) && cap(s.out) <= maxReusedOut {
		// Everything is acknowledged: keep a small array for the next
		// Send, so that a steady flow allocates only each message's copy.
		s.out = s.out[:0]
	} else {
		s.out = s.out[n:]
		if len(s.out) == 0 {
			s.out = s.out[:0:0] // let the old array go
		}
	}
	s.acked = upTo
	s.spaceFree.broadcast()
}

// maxReusedOut is the largest outbound array, in messages, that an idle
// session keeps for reuse once the client has acknowledged everything.
const maxReusedOut = 64

// Sent returns how many messages the session has queued for the client in
// all, and how many of them the client has acknowledged. Once the session
// has ended, the undelivered ones are forgotten and sent equals
// acknowledged.
func (s *Session) Sent() (sent, acknowledged uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked + uint64(len(s.out)), max(s.acked, s.clientAcked)
}
