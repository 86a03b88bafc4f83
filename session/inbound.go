package session

import (
	"context"
	"fmt"
)

// Recv returns the next message from the client. Once the session has
// closed and every message received before the close has been returned,
// Recv returns the CloseError. If ctx ends first, Recv returns ctx.Err().
func (s *Session) Recv(ctx context.Context) (Message, error) {
	s.mu.Lock()
	for {
		if len(s.in) > 0 {
			m := s.in[0]
			s.in[0] = Message{}
			s.in = s.in[1:]
			if len(s.in) == 0 {
				s.in = s.in[:0:0]
			}
			s.inBytes -= len(m.Data)
			s.inSpace.broadcast()
			s.mu.Unlock()
			return m, nil
		}
		if s.closeErr != nil {
			err := *s.closeErr
			s.mu.Unlock()
			return Message{}, err
		}
		ready := s.inReady.wait()
		s.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			// ctx may be the session's own context, canceled by the
			// close that also made messages or the CloseError ready:
			// those win.
			s.mu.Lock()
			if len(s.in) == 0 && s.closeErr == nil {
				s.mu.Unlock()
				return Message{}, ctx.Err()
			}
			continue
		}
		s.mu.Lock()
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
// a seq beyond the next expected number closes the session with
// StatusResumeGap and returns ErrSequenceGap. While Config.MaxQueuedBytes of
// received messages wait for Recv, Deliver waits for room until ctx ends.
// Deliver keeps msgs' Data: callers must not reuse it. It returns the
// session's CloseError when the session has closed.
func (s *Session) Deliver(ctx context.Context, seq uint64, msgs []Message) error {
	if seq == 0 {
		return fmt.Errorf("%w: message numbers start at 1", ErrSequenceGap)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var accepted, size int // for the Observer, told on the way out
	if o := s.cfg.Observer; o != nil {
		defer func() {
			if accepted > 0 {
				o.MessagesIn(s.lastTransport, accepted, size)
			}
		}()
	}
	for i := 0; i < len(msgs); {
		if s.closeErr != nil {
			return *s.closeErr
		}
		num := seq + uint64(i)
		if num <= s.received {
			i++
			continue
		}
		if num > s.received+1 {
			s.closeLocked(CloseError{Code: StatusResumeGap, Reason: "sequence gap"})
			return fmt.Errorf("%w: message %d arrived, %d expected", ErrSequenceGap, num, s.received+1)
		}
		m := msgs[i]
		if len(m.Data) > s.cfg.MaxMessageBytes {
			s.closeLocked(CloseError{Code: StatusMessageTooBig, Reason: "message too big"})
			return ErrMessageTooBig
		}
		if s.inBytes+len(m.Data) > s.cfg.MaxQueuedBytes && len(s.in) > 0 {
			room := s.inSpace.wait()
			s.mu.Unlock()
			select {
			case <-room:
			case <-ctx.Done():
				s.mu.Lock()
				return ctx.Err()
			}
			s.mu.Lock()
			continue // look again: another delivery may have taken this number
		}
		s.in = append(s.in, m)
		s.inBytes += len(m.Data)
		s.received++
		accepted++
		size += len(m.Data)
		i++
		s.inReady.broadcast()
		if s.link != nil && s.link.acksInBand && (s.received-s.link.ackSent >= ackEvery || s.received-s.link.ackSent == 1) {
			s.link.notify()
		}
	}
	return nil
}
