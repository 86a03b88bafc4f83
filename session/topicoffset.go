package session

import "github.com/tetherkit/tether/wire"

// TopicOffset is how far a session has come in a topic whose messages are
// numbered (a cluster's topic history): it has every message of Topic up to
// Offset that was for it. A journaled session stores it with the messages
// (Entry.TopicOffsets), so that the process that takes the session over
// delivers the topic's later messages, those published while no process
// held the session included, before any newer one.
type TopicOffset struct {
	Topic  string
	Offset uint64
}

// offsetMark is the topic offset of a queued message: number num.
type offsetMark struct {
	num uint64
	TopicOffset
}

// SendSharedAt is SendShared for the message of offset at.Offset in topic
// at.Topic's numbered history. A journaled session stores at with the
// message, in the same Write, so that the stored offset never runs ahead of
// the stored messages; without a journal it is SendShared.
func (l *Local) SendSharedAt(m wire.Message, frames *wire.Frames, at TopicOffset) error {
	return l.sendShared(m, frames, at)
}

// SetTopicOffset records that the session has every message of topic up to
// offset that was for it, without a message: a subscription that starts
// after offset (the messages after it are delivered to the session). A
// journaled session stores it with its next Write, unless it has reached
// further already; without a journal it does nothing.
func (l *Local) SetTopicOffset(topic string, offset uint64) {
	s := l.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil || s.finished {
		return
	}
	if s.offsetsAt == nil {
		s.offsetsAt = make(map[string]uint64)
	}
	s.offsetsAt[topic] = max(s.offsetsAt[topic], offset)
	s.journalLocked()
}

// markOffsetLocked records the topic offset of the message just queued, for
// the journal. Called with mu held.
func (s *Session) markOffsetLocked(at TopicOffset) {
	if s.journal == nil || at.Offset == 0 {
		return
	}
	s.offsetMarks = append(s.offsetMarks, offsetMark{num: s.acked + uint64(len(s.out)), TopicOffset: at})
}

// offsetsLocked adds to e the topic offsets of the messages numbered from
// first to last and those set without a message (SetTopicOffset): the
// highest of each topic.
func (s *Session) offsetsLocked(e *Entry, first, last uint64) {
	for _, mk := range s.offsetMarks {
		if mk.num > last {
			break
		}
		if mk.num >= first {
			e.raiseOffset(mk.TopicOffset)
		}
	}
	for t, o := range s.offsetsAt {
		e.raiseOffset(TopicOffset{Topic: t, Offset: o})
	}
}

// raiseOffset sets at.Topic's offset in e to at.Offset, unless it holds a
// higher one.
func (e *Entry) raiseOffset(at TopicOffset) {
	for i := range e.TopicOffsets {
		if e.TopicOffsets[i].Topic == at.Topic {
			e.TopicOffsets[i].Offset = max(e.TopicOffsets[i].Offset, at.Offset)
			return
		}
	}
	e.TopicOffsets = append(e.TopicOffsets, at)
}

// offsetsStoredLocked forgets the topic offsets e stored: those of the
// messages stored (or acknowledged, by Abort), and those set without a
// message that reached no further.
func (s *Session) offsetsStoredLocked(e *Entry) {
	done := max(s.stored, s.acked)
	n := 0
	for n < len(s.offsetMarks) && s.offsetMarks[n].num <= done {
		n++
	}
	if n > 0 {
		s.offsetMarks = append(s.offsetMarks[:0], s.offsetMarks[n:]...)
	}
	for _, at := range e.TopicOffsets {
		if o, ok := s.offsetsAt[at.Topic]; ok && o <= at.Offset {
			delete(s.offsetsAt, at.Topic)
		}
	}
}
