package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetherkit/tether/wire"
)

// Journal stores what changes in one session, so that another process can
// continue the session (Restore) when the one that holds it is gone: a
// cluster node's shared store, such as Redis, behind a lease that says
// which process owns the session. NewJournaled and Restored.Journal make a
// session that writes to one; package doc's "Durable sessions" says what
// the session waits for.
//
// The session calls Write from one goroutine at a time, never
// concurrently, with what changed since the last Write that returned nil.
// Write returns nil once e is stored. It must not keep e or e.Messages
// after it returns (the messages' Data never changes and may be kept).
// ctx ends when the session finishes.
//
// An error wrapping ErrLeaseLost says that this process no longer owns the
// session (another one took it over, or its state is gone): the session
// ends here at once, without a close frame (see LeaseLost). Any other
// error is taken as passing (the store cannot be reached now): the session
// writes again after a pause (10 ms, doubling up to 1 s) until a Write
// returns nil or the session ends. The Entry
// written again holds the failed one's changes and those made since: the
// same First, the same messages and maybe more after them, counts at least
// as high. A Journal therefore skips messages it has stored already.
type Journal interface {
	Write(ctx context.Context, e *Entry) error
}

// Entry is what changed in a journaled session since the last Write that
// returned nil.
type Entry struct {
	// First is the number of Messages[0]; 0 when Messages is empty.
	First uint64
	// Messages are the new messages for the client, numbered First,
	// First+1...
	Messages []wire.Message
	// Acked, when not 0, is how many messages the client has acknowledged
	// now: the Journal may forget them. It never exceeds the last message
	// stored (this Entry's included).
	Acked uint64
	// Received, when not 0, is how many client messages the session has
	// accepted now.
	Received uint64
	// Subscribe and Unsubscribe are the topics the session joined and
	// left (JournalTopic, JournalSubscribe): net changes, so a topic is in
	// at most one of them.
	Subscribe, Unsubscribe []string
	// SubscribeInfo holds the presence info the session joined each topic
	// of Subscribe with, in the same order (nil for none), or is empty
	// when none has any. The Journal stores each with its topic, for the
	// process that takes the session over (Restored.TopicInfo).
	SubscribeInfo [][]byte
	// TopicOffsets are how far the session has come in its numbered
	// topics (SendSharedAt, SetTopicOffset), one per topic, each the
	// highest offset of its topic among this Entry's Messages and the
	// offsets set without a message. The Journal stores them only where
	// they are higher than the stored ones, and drops a topic's offset
	// when it stores the topic's Unsubscribe.
	TopicOffsets []TopicOffset
}

// empty reports whether e has nothing to store.
func (e *Entry) empty() bool {
	return len(e.Messages) == 0 && e.Acked == 0 && e.Received == 0 && len(e.Subscribe) == 0 && len(e.Unsubscribe) == 0 &&
		len(e.TopicOffsets) == 0
}

// ErrLeaseLost is wrapped by the errors a Journal returns when this process
// no longer owns the session, and by those a session that lost its lease
// returns (Err, Send, Recv, Deliver, Attach, Link.Pull...): it moved to
// another process. Those errors wrap ErrUnreachable too, so that
// transports answer as for a session whose holder cannot be reached (503,
// or the connection ends) and the client comes back, to the new owner, and
// a wire.CloseError with StatusServiceRestart, which is never sent.
var ErrLeaseLost = errors.New("session: lease lost")

// moved is the CloseError a session that lost its lease ends with, for
// wire.CloseStatus and the Observer; it is never sent to the client.
var moved = wire.CloseError{Code: wire.StatusServiceRestart, Reason: "moved to another process"}

// movedError is the error a session that lost its lease returns.
type movedError struct{ cause error }

func (e *movedError) Error() string {
	return "session: moved to another process: " + e.cause.Error()
}

func (e *movedError) Unwrap() []error {
	return []error{ErrLeaseLost, ErrUnreachable, moved, e.cause}
}

// The pause before a failed Write is tried again: journalRetryMin after the
// first failure, doubling up to journalRetryMax.
const (
	journalRetryMin = 10 * time.Millisecond
	journalRetryMax = time.Second
)

// journalAckEvery is how many acknowledged messages the journal may keep
// before an acknowledgement alone makes a Write: acknowledgements otherwise
// go with the next messages or count.
const journalAckEvery = 64

// NewJournaled returns a session as New does, whose changes are written to
// a Journal: open is called with the session's id and token before
// anything else happens, and returns the Journal (a cluster node creates
// the session's stored state there). An error from open is returned as it
// is, and no session is made.
func NewJournaled(cfg *Config, info RequestInfo, open func(id, token string) (Journal, error), onFinish func(*Local)) (*Local, error) {
	cfg = cfg.withDefaults()
	id, token := cfg.sessionID(), randomID()
	j, err := open(id, token)
	if err != nil {
		return nil, err
	}
	return newLocal(cfg, id, token, info, onFinish, func(s *Session) { s.setJournal(j) }), nil
}

// TakenOver reports whether this process took the session over from
// another one that held it (Restore): the application runs on for it here,
// after a connection of its client came to this process.
func (s *Session) TakenOver() bool { return s.takenOver }

// setJournal makes s write to j, before anything else can see s.
func (s *Session) setJournal(j Journal) {
	s.journal = j
	s.journalCtx, s.journalStop = context.WithCancel(context.Background())
	s.stored = s.acked + uint64(len(s.out))
	s.storedRecv = s.received
	s.storedAcked = s.acked
}

// lastSendableLocked returns the number of the last message a link may
// hand out: the last queued, or without a journal the last stored.
func (s *Session) lastSendableLocked() uint64 {
	last := s.acked + uint64(len(s.out))
	if s.journal != nil {
		last = min(last, s.stored)
	}
	return last
}

// ackableLocked returns the received count a link may acknowledge to the
// client: with a journal, the stored one.
func (s *Session) ackableLocked() uint64 {
	if s.journal != nil {
		return s.storedRecv
	}
	return s.received
}

// entryLocked fills e with what there is to write now, and reports whether
// there is anything. Messages and the received count that a delivery's
// message callbacks may still add to are held back (holding) until they
// return, so that both go in one Entry.
func (s *Session) entryLocked(e *Entry) bool {
	sent, recv := s.acked+uint64(len(s.out)), s.received
	if s.holding {
		sent, recv = min(sent, s.holdSent), min(recv, s.holdRecv)
	}
	msgs, offsets := e.Messages[:0], e.TopicOffsets[:0]
	*e = Entry{TopicOffsets: offsets}
	if s.stored < s.acked {
		// Abort counted what it discarded as acknowledged: nothing of it
		// is stored.
		s.stored = s.acked
	}
	if sent > s.stored {
		e.First = s.stored + 1
		for _, q := range s.out[s.stored-s.acked : sent-s.acked] {
			msgs = append(msgs, q.Message)
		}
		e.Messages = msgs
	} else {
		e.Messages = msgs
	}
	s.offsetsLocked(e, s.stored+1, sent)
	if recv > s.storedRecv {
		e.Received = recv
	}
	last := max(s.stored, sent)
	if acked := min(s.clientAcked, last); acked > s.storedAcked {
		if len(e.Messages) > 0 || e.Received != 0 || acked-s.storedAcked >= journalAckEvery {
			e.Acked = acked
		}
	}
	withInfo := false
	for t, c := range s.topics {
		if c.subscribed {
			e.Subscribe = append(e.Subscribe, t)
			withInfo = withInfo || c.info != nil
		} else {
			e.Unsubscribe = append(e.Unsubscribe, t)
		}
	}
	if withInfo {
		for _, t := range e.Subscribe {
			e.SubscribeInfo = append(e.SubscribeInfo, s.topics[t].info)
		}
	}
	return !e.empty()
}

// journalLocked starts the goroutine that writes to the journal, unless it
// runs already or there is nothing to write. Called after every change.
func (s *Session) journalLocked() {
	if s.journal == nil || s.writing || s.finished {
		return
	}
	if !s.entryLocked(&s.entry) {
		return
	}
	s.writing = true
	go s.writeJournal()
}

// writeJournal writes what changes to the journal, one Write at a time,
// until there is nothing left to write or the session has finished. Only
// one runs at a time (s.writing); it owns s.entry.
func (s *Session) writeJournal() {
	retry := time.Duration(0)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	s.mu.Lock()
	for {
		if s.finished || !s.entryLocked(&s.entry) {
			s.writing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		err := s.journal.Write(s.journalCtx, &s.entry)
		s.mu.Lock()
		if err == nil {
			retry = 0
			s.storedLocked(&s.entry)
			continue
		}
		if errors.Is(err, ErrLeaseLost) {
			s.loseLocked(err)
			continue
		}
		if s.finished {
			continue
		}
		retry = min(max(2*retry, journalRetryMin), journalRetryMax)
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(retry)
		} else {
			timer.Reset(retry)
		}
		select {
		case <-timer.C:
		case <-s.journalCtx.Done():
		}
		s.mu.Lock()
	}
}

// storedLocked records that e is stored: its messages may go to the
// client, its received count be acknowledged, and a Deliver waiting for it
// return.
func (s *Session) storedLocked(e *Entry) {
	if n := uint64(len(e.Messages)); n > 0 && e.First+n-1 > s.stored {
		s.stored = e.First + n - 1
		if s.link != nil {
			s.link.notify()
		}
	}
	if e.Received > s.storedRecv {
		s.storedRecv = e.Received
		if s.link != nil {
			s.link.received()
		}
	}
	s.storedAcked = max(s.storedAcked, e.Acked)
	for i, t := range e.Subscribe {
		var info []byte
		if i < len(e.SubscribeInfo) {
			info = e.SubscribeInfo[i]
		}
		if c, ok := s.topics[t]; ok && c.subscribed && bytes.Equal(c.info, info) {
			delete(s.topics, t)
		}
	}
	for _, t := range e.Unsubscribe {
		if c, ok := s.topics[t]; ok && !c.subscribed {
			delete(s.topics, t)
		}
	}
	s.offsetsStoredLocked(e)
	clear(e.Messages) // the queue may let go of them
	s.journalDone.broadcast()
}

// inBandKey marks the context of a Deliver whose client learns what was
// accepted from the link's acknowledgements (AcknowledgedInBand).
type inBandKey struct{}

// AcknowledgedInBand returns a context for Deliver, from a transport whose
// connection carries the acknowledgements of client messages
// (AttachOptions.AcksInBand): a WebSocket. With a journal, Deliver given
// it does not wait for its received count to be stored while fewer than
// journalWindow (64) client messages, and sent messages, wait to be
// stored: the client counts a message accepted only once an
// acknowledgement says so, and a link acknowledges only what is stored, so
// the connection's messages are stored many to a Write. Without a journal
// it changes nothing.
func AcknowledgedInBand(ctx context.Context) context.Context {
	return context.WithValue(ctx, inBandKey{}, true)
}

// journalWindow is how many client messages, and how many sent ones, may
// wait to be stored when Deliver returns with AcknowledgedInBand.
const journalWindow = 64

// waitStoredLocked waits until the journal holds received count recv and
// the messages up to number sent, and returns nil; or the session's error
// once it has finished (or lost its lease), or an error wrapping
// ErrUnreachable when ctx ends first: the client sends again. With
// AcknowledgedInBand, journalWindow of each may wait still.
func (s *Session) waitStoredLocked(ctx context.Context, recv, sent uint64) error {
	if ctx.Value(inBandKey{}) != nil {
		recv -= min(recv, journalWindow)
		sent -= min(sent, journalWindow)
		s.journalLocked()
	}
	for {
		if s.lost != nil {
			return s.lost
		}
		if s.finished {
			return *s.closeErr
		}
		// Abort counts what it discarded as acknowledged.
		if s.storedRecv >= recv && max(s.stored, s.acked) >= sent {
			return nil
		}
		if err := s.awaitWriteLocked(ctx); err != nil {
			return fmt.Errorf("%w: not stored yet: %w", ErrUnreachable, err)
		}
	}
}

// awaitWriteLocked starts a Write of what changed, if none is in flight,
// and waits for the one in flight to end, or for ctx's end (its error).
// Called with mu held, which it releases while it waits.
func (s *Session) awaitWriteLocked(ctx context.Context) error {
	s.journalLocked()
	done := s.journalDone.wait()
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LeaseLost ends the session at once because this process no longer owns
// it (cause says why; a cluster node's lease keeper tells it so), as a
// Journal's error wrapping ErrLeaseLost does: no close frame goes to the
// client, whose connections end and who comes back to the new owner. The
// session's links end, it leaves the store (onFinish), and Err, OnClose's
// function, Send, Recv (after the messages received), Deliver and Attach
// return an error wrapping ErrLeaseLost, ErrUnreachable and cause.
func (l *Local) LeaseLost(cause error) {
	s := l.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseLocked(cause)
}

func (s *Session) loseLocked(cause error) {
	if s.finished {
		return
	}
	s.lost = &movedError{cause: cause}
	ce := moved
	s.closeErr = &ce
	s.finishLocked()
}

// errLocked returns the error of a session that has closed: its
// CloseError, or the error of a session that lost its lease.
func (s *Session) errLocked() error {
	if s.lost != nil {
		return s.lost
	}
	return *s.closeErr
}

// topicChange is a change of one topic not stored yet: joined (with its
// presence info) or left.
type topicChange struct {
	subscribed bool
	info       []byte
}

// JournalTopic records that the session joined (subscribed) or left a
// topic, for its Journal's next Write, and returns once that is stored (or
// a later change of the same topic is), with nil; or with ctx's error, or
// the session's once it has ended. Without a journal it returns nil at
// once. A server calls it as the session subscribes and unsubscribes.
func (l *Local) JournalTopic(ctx context.Context, topic string, subscribed bool) error {
	return l.journalTopic(ctx, topic, topicChange{subscribed: subscribed})
}

// JournalSubscribe is JournalTopic for a session that joined topic with
// presence info, which is stored with the topic (Entry.SubscribeInfo) so
// that the process that takes the session over joins it with the same
// info. It keeps info, which the caller must not change.
func (l *Local) JournalSubscribe(ctx context.Context, topic string, info []byte) error {
	return l.journalTopic(ctx, topic, topicChange{subscribed: true, info: info})
}

func (l *Local) journalTopic(ctx context.Context, topic string, change topicChange) error {
	s := l.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	if s.topics == nil {
		s.topics = make(map[string]topicChange)
	}
	s.topics[topic] = change
	for {
		if s.lost != nil {
			return s.lost
		}
		if s.finished {
			return *s.closeErr
		}
		if c, ok := s.topics[topic]; !ok || c.subscribed != change.subscribed || !bytes.Equal(c.info, change.info) {
			return nil
		}
		if err := s.awaitWriteLocked(ctx); err != nil {
			return err
		}
	}
}
