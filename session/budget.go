package session

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/wire"
)

// MinFairShare is the least fair share (QueueBudget.FairShare) of one
// queue, however many sessions share the budget: 64 KiB, the largest
// message by default (a queue over the budget holds that much anyway: an
// empty queue always takes one message), and room for a backlog of a
// topic's messages, which count in every subscriber's queue though their
// data is held once.
const MinFairShare = 64 << 10

// QueueBudget bounds the bytes that the queues of many sessions (a
// server's, through Config.QueueBudget) hold together, in both directions,
// counted as Config.MaxQueuedBytes counts them: each message its data's
// length plus MessageOverhead, from the moment it is queued until the
// client acknowledges it (to the client) or the application reads it (from
// the client), or the session ends.
//
// While the bytes held stay within the budget, every message a session's
// own MaxQueuedBytes lets in is let in. Over the budget, a message is let
// in only while the queue it goes to (the session's to the client, or from
// it) stays within its fair share (FairShare: the budget divided among the
// live sessions' queues, at least MinFairShare), and an empty queue always
// takes one; so the sessions whose clients keep up go on, while a queue
// holding more meets what it meets when full: to the client, the
// slow-consumer policy (a close with StatusSlowConsumer and reason
// ReasonQueueBudget, ErrDropped wrapping ErrQueueBudget, or a wait); from
// the client, a delivery that waits for room. A wait ends as soon as its
// own queue makes room, and notices room that other sessions leave within
// a second. Each direction is judged on its own: an application that
// reads what it receives is never held up because its client acknowledges
// nothing; its Send meets the policy instead. So the queues hold at most
// the budget and, for each live session, twice the larger of its fair
// share and one message.
//
// A QueueBudget costs one atomic add per message queued and one per
// release (an acknowledgement, a read). Its methods may be called
// concurrently.
type QueueBudget struct {
	limit    int64
	used     atomic.Int64 // bytes the sessions' queues hold
	sessions atomic.Int64 // live sessions counting on the budget
}

// NewQueueBudget returns a budget of limit bytes (at least 0) for the
// sessions made with it in their Config.
func NewQueueBudget(limit int64) *QueueBudget {
	return &QueueBudget{limit: max(limit, 0)}
}

// Limit returns the budget's bytes.
func (b *QueueBudget) Limit() int64 { return b.limit }

// Used returns the bytes the queues of the budget's sessions hold now. It
// is 0 once every session has ended.
func (b *QueueBudget) Used() int64 { return b.used.Load() }

// Sessions returns how many sessions count on the budget now: those made
// with it (New, NewJournaled, Restore) and not ended.
func (b *QueueBudget) Sessions() int64 { return b.sessions.Load() }

// FairShare returns what one queue of a session (to the client, or from
// it) may hold and still be let in when the budget is exhausted: Limit
// divided by twice Sessions, and at least MinFairShare.
func (b *QueueBudget) FairShare() int64 {
	return max(b.limit/max(2*b.sessions.Load(), 1), MinFairShare)
}

// take counts n bytes more for a queue that holds held bytes already, and
// reports whether they are let in: within the budget, or within the
// queue's fair share, or into an empty queue. It counts nothing when it
// reports false. A nil budget lets everything in.
func (b *QueueBudget) take(n, held int) bool {
	if b == nil {
		return true
	}
	if b.used.Add(int64(n)) <= b.limit || held == 0 || int64(held+n) <= b.FairShare() {
		return true
	}
	b.used.Add(-int64(n))
	return false
}

// add counts n bytes more (or fewer, when negative) without a check: a
// restored session's queue, a release.
func (b *QueueBudget) add(n int) {
	if b != nil && n != 0 {
		b.used.Add(int64(n))
	}
}

// join and leave count a live session.
func (b *QueueBudget) join() {
	if b != nil {
		b.sessions.Add(1)
	}
}

func (b *QueueBudget) leave() {
	if b != nil {
		b.sessions.Add(-1)
	}
}

// ReasonQueueBudget is the reason of the StatusSlowConsumer close of a
// session that a QueueBudget refused a message for the client.
const ReasonQueueBudget = "queue budget exhausted"

// The close and the drop error of a session that the budget refused a
// message for the client, and the close of one whose own queue is full.
var (
	overBudget       = wire.CloseError{Code: wire.StatusSlowConsumer, Reason: ReasonQueueBudget}
	slowConsumer     = wire.CloseError{Code: wire.StatusSlowConsumer, Reason: "slow consumer"}
	errDroppedBudget = fmt.Errorf("%w: %w", ErrDropped, ErrQueueBudget)
)

// budgetRecheck is how often a Send or a Deliver that the budget refused
// looks again while it waits for room: what other sessions release wakes
// no one (waking every waiter at each release would cost each release as
// much as there are waiters), while its own queue's room wakes it at once.
// Each waiter costs a wakeup per budgetRecheck: 100,000 sessions refused
// at once, 100,000 a second.
const budgetRecheck = time.Second

// releaseInLocked gives the budget back n bytes of received messages:
// until the session ends, which releases all it holds at once (Recv
// returns the messages received before the end all the same).
func (s *Session) releaseInLocked(n int) {
	if !s.finished {
		s.cfg.QueueBudget.add(-n)
	}
}

// waitRoom waits until room is closed or ctx ends (ctx's error), and when
// the budget refused (budget), for budgetRecheck at most. Called
// without the session's lock.
func waitRoom(ctx context.Context, room <-chan struct{}, budget bool) error {
	var recheck <-chan time.Time
	if budget {
		t := time.NewTimer(budgetRecheck)
		defer t.Stop()
		recheck = t.C
	}
	select {
	case <-room:
	case <-recheck:
	case <-ctx.Done():
		if budget {
			return fmt.Errorf("%w: %w", ErrQueueBudget, ctx.Err())
		}
		return ctx.Err()
	}
	return nil
}
