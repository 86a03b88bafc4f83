package session

import "github.com/tetherkit/tether/wire"

// queued is one message for the client as the session holds it, with the
// Frames it shares with other sessions (nil for a message of its own).
type queued struct {
	wire.Message
	frames *wire.Frames
}

// SendShared queues m for the client as Send does, for a message queued for
// many sessions at once (a topic's publish): it never waits, and it keeps
// m.Data as it is, without a copy of its own, so that every session the
// message goes to holds the same bytes. The caller must never change m.Data
// afterwards. frames, which may be nil, is shared by those sessions likewise:
// their connections encode the message once per framing. The attached
// connection is told through AttachOptions.NotifyShared when its transport
// gave one: it may write the message on the caller's goroutine, without
// waiting for the network, before SendShared returns.
//
// It checks m as Send does (wire.ErrMessageTooBig, wire.ErrInvalidMessage) and returns
// the CloseError once the session has closed. When the client has not
// acknowledged Config.MaxQueuedBytes of messages, or Config.QueueBudget
// refuses m, SlowConsumerDrop drops m (ErrDropped) and SlowConsumerClose
// closes the session with StatusSlowConsumer, as for Send;
// SlowConsumerBlock, whose wait would hold up every other session the
// message goes to, closes the session as SlowConsumerClose does, so that
// its client never misses a message without knowing it.
func (l *Local) SendShared(m wire.Message, frames *wire.Frames) error {
	return l.sendShared(m, frames, TopicOffset{})
}

// sendShared is SendShared, and SendSharedAt for a message with a topic
// offset (at.Offset not 0).
func (l *Local) sendShared(m wire.Message, frames *wire.Frames, at TopicOffset) error {
	s := l.Session
	if err := s.cfg.CheckMessage(m); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closeFrame != nil || s.finished {
		err := s.errLocked()
		s.mu.Unlock()
		return err
	}
	size := queuedSize(m)
	if full := s.outBytes+size > s.cfg.MaxQueuedBytes && len(s.out) > 0; full || !s.cfg.QueueBudget.take(size, s.outBytes) {
		if s.cfg.SlowConsumer == SlowConsumerDrop {
			s.dropped++
			if o := s.cfg.Observer; o != nil {
				o.Dropped()
			}
			s.mu.Unlock()
			if !full {
				return errDroppedBudget
			}
			return ErrDropped
		}
		s.closeSlowLocked(!full)
		err := *s.closeErr
		s.mu.Unlock()
		return err
	}
	if ln := s.link; ln != nil && ln.sharedFn != nil && s.journal == nil {
		// The transport writes the message on this goroutine if it can
		// without waiting, once the lock is released.
		s.appendLocked(m, frames)
		s.mu.Unlock()
		ln.sharedFn()
		return nil
	}
	// Not written on this goroutine: the caller goes on to the next
	// session at once, and the connection writes on a goroutine of its
	// own.
	s.appendLocked(m, frames)
	s.markOffsetLocked(at)
	s.queuedLocked()
	s.mu.Unlock()
	return nil
}
