package session_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The budget tests share a budget of budgetBytes between a heavy session,
// which queues until it is refused, and a light one, which must go on.
const (
	budgetBytes = 256 << 10
	budgetMsg   = 1000                                // data bytes of each message
	budgetSize  = budgetMsg + session.MessageOverhead // what each counts for
)

// budgetConfig returns testConfig with policy, a per-session queue larger
// than the budget, and a budget of budgetBytes of its own.
func budgetConfig(policy session.SlowConsumerPolicy) *session.Config {
	cfg := testConfig()
	cfg.MaxQueuedBytes = 4 * budgetBytes
	cfg.SlowConsumer = policy
	cfg.QueueBudget = session.NewQueueBudget(budgetBytes)
	return cfg
}

func budgetMessage(i int) wire.Message {
	return text(fmt.Sprintf("%0*d", budgetMsg, i))
}

// fillOut sends to s until a Send fails, and returns how many were queued
// and the error.
func fillOut(t *testing.T, s *session.Local) (int, error) {
	t.Helper()
	ctx := testContext(t)
	for i := 0; ; i++ {
		if err := s.Send(ctx, budgetMessage(i)); err != nil {
			return i, err
		}
		if i > 4*budgetBytes/budgetSize {
			t.Fatalf("%d messages queued, and no refusal", i)
		}
	}
}

// wantBudget checks what the budget counts and how many sessions share it.
func wantBudget(t *testing.T, what string, b *session.QueueBudget, used, sessions int64) {
	t.Helper()
	if b.Used() != used || b.Sessions() != sessions {
		t.Errorf("%s: budget used %d by %d sessions, want %d by %d", what, b.Used(), b.Sessions(), used, sessions)
	}
}

// wantBudgetClose checks that err is the close of a session that the
// budget refused a message for its client.
func wantBudgetClose(t *testing.T, what string, err error) {
	t.Helper()
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce.Code != wire.StatusSlowConsumer || ce.Reason != session.ReasonQueueBudget {
		t.Errorf("%s = %v, want 4002 %q", what, err, session.ReasonQueueBudget)
	}
}

// TestQueueBudgetCloses fills the budget with one session's messages to
// its client, which acknowledges nothing: the message that goes over
// closes it with 4002 and ReasonQueueBudget, while a session holding less
// than its fair share goes on over the budget, and each one's bytes
// leave the budget when it ends.
func TestQueueBudgetCloses(t *testing.T) {
	cfg := budgetConfig(session.SlowConsumerClose)
	b := cfg.QueueBudget
	heavy, light := newSession(t, cfg), newSession(t, cfg)
	if got, want := b.FairShare(), int64(budgetBytes/4); got != want {
		t.Fatalf("FairShare() with 2 sessions = %d, want %d", got, want)
	}
	n, err := fillOut(t, heavy)
	if want := budgetBytes / budgetSize; n != want {
		t.Errorf("%d messages queued before the refusal, want %d (the budget's)", n, want)
	}
	wantBudgetClose(t, "Send over the budget", err)
	wantBudget(t, "heavy closed, its messages still queued for its close frame", b, int64(n*budgetSize), 2)

	// The budget is exhausted, and the light session goes on: its client
	// acknowledges as it reads.
	l := attach(t, light, session.AttachOptions{Transport: "test"})
	ctx := testContext(t)
	for i := range 4 * n {
		if err := light.Send(ctx, budgetMessage(i)); err != nil {
			t.Fatalf("light session's Send %d over the budget: %v", i, err)
		}
		if i%8 == 7 {
			got := pull(t, l, 1<<20)
			if err := light.Acknowledge(got.First + uint64(len(got.Messages)) - 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	heavy.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	sent, acked := light.Sent()
	wantBudget(t, "heavy ended", b, int64(sent-acked)*budgetSize, 1)
	light.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	wantBudget(t, "both ended", b, 0, 0)
}

// TestQueueBudgetDrops checks SlowConsumerDrop: the message over the
// budget is dropped (ErrDropped wrapping ErrQueueBudget) and counted, and
// the session goes on, its client's messages still let in.
func TestQueueBudgetDrops(t *testing.T) {
	cfg := budgetConfig(session.SlowConsumerDrop)
	heavy := newSession(t, cfg)
	newSession(t, cfg) // a second session: a queue's fair share is a quarter of the budget
	_, err := fillOut(t, heavy)
	if !errors.Is(err, session.ErrDropped) || !errors.Is(err, session.ErrQueueBudget) {
		t.Errorf("Send over the budget = %v, want ErrDropped and ErrQueueBudget", err)
	}
	if heavy.Dropped() != 1 || heavy.Err() != nil {
		t.Errorf("after the drop: Dropped() = %d, Err() = %v; want 1, nil", heavy.Dropped(), heavy.Err())
	}
	// Each direction is judged on its own: the client's messages still
	// go in, over the budget, while the queue from the client holds less
	// than its fair share.
	msgs := make([]wire.Message, 8)
	for i := range msgs {
		msgs[i] = budgetMessage(i)
	}
	if err := heavy.Deliver(testContext(t), 1, msgs); err != nil {
		t.Errorf("Deliver to a session whose queue to the client is over its share: %v", err)
	}
	// The per-session queue's drop stays as it was.
	cfg = testConfig()
	cfg.SlowConsumer = session.SlowConsumerDrop
	cfg.MaxQueuedBytes = 4 * budgetSize
	cfg.QueueBudget = session.NewQueueBudget(budgetBytes)
	s := newSession(t, cfg)
	if _, err := fillOut(t, s); !errors.Is(err, session.ErrDropped) || errors.Is(err, session.ErrQueueBudget) {
		t.Errorf("Send over MaxQueuedBytes = %v, want ErrDropped alone", err)
	}
}

// TestQueueBudgetBlocks checks SlowConsumerBlock: a Send over the budget
// waits, and returns ctx's error wrapped in ErrQueueBudget when ctx ends
// first; it goes on once its own client acknowledges, and once another
// session ends and leaves room, which wakes nothing of its own.
func TestQueueBudgetBlocks(t *testing.T) {
	cfg := budgetConfig(session.SlowConsumerBlock)
	b := cfg.QueueBudget
	heavy, other := newSession(t, cfg), newSession(t, cfg)
	ctx := testContext(t)
	// other holds half the budget but a message, heavy the rest.
	otherCount := budgetBytes/2/budgetSize - 1
	for i := range otherCount {
		if err := other.Send(ctx, budgetMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	var n int
	var err error
	for n = 0; err == nil; n++ {
		err = heavy.Send(short, budgetMessage(n))
	}
	if !errors.Is(err, session.ErrQueueBudget) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send over the budget = %v, want ErrQueueBudget and the deadline", err)
	}
	if heavy.Err() != nil {
		t.Fatalf("heavy session closed: %v", heavy.Err())
	}

	// Its client acknowledges one message: one Send goes in.
	attach(t, heavy, session.AttachOptions{Transport: "test", Received: 1})
	if err := heavy.Send(ctx, budgetMessage(n)); err != nil {
		t.Fatalf("Send after an acknowledgement: %v", err)
	}
	// The next waits until the other session ends.
	done := make(chan error, 1)
	go func() { done <- heavy.Send(ctx, budgetMessage(n+1)) }()
	other.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	if err := <-done; err != nil {
		t.Fatalf("Send waiting for room that another session left: %v", err)
	}
	sent, acked := heavy.Sent()
	wantBudget(t, "other ended", b, int64(sent-acked)*budgetSize, 1)
}

// TestQueueBudgetCallback checks that a Send made in a message callback
// under SlowConsumerBlock, which never waits, closes its session with
// ReasonQueueBudget when the budget refuses it.
func TestQueueBudgetCallback(t *testing.T) {
	cfg := budgetConfig(session.SlowConsumerBlock)
	s := newSession(t, cfg)
	newSession(t, cfg)
	ctx := testContext(t)
	var sendErr error
	s.OnMessage(func(wire.Message) {
		for i := 0; sendErr == nil && i < 4*budgetBytes/budgetSize; i++ {
			sendErr = s.Send(ctx, budgetMessage(i))
		}
	})
	if err := s.Deliver(ctx, 1, texts("go")); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	wantBudgetClose(t, "Send in a callback over the budget", sendErr)
}

// TestQueueBudgetInbound fills the budget with client messages the
// application does not read: Deliver waits for room (and returns ctx's
// error wrapped in ErrQueueBudget when ctx ends first), while a light
// session's messages still go in; once the application reads, the
// waiting Deliver goes on.
func TestQueueBudgetInbound(t *testing.T) {
	cfg := budgetConfig(session.SlowConsumerClose)
	b := cfg.QueueBudget
	heavy, light := newSession(t, cfg), newSession(t, cfg)
	ctx := testContext(t)
	msgs := make([]wire.Message, 2*budgetBytes/budgetSize)
	for i := range msgs {
		msgs[i] = budgetMessage(i)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := heavy.Deliver(short, 1, msgs)
	if !errors.Is(err, session.ErrQueueBudget) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deliver over the budget = %v, want ErrQueueBudget and the deadline", err)
	}
	fit := uint64(budgetBytes / budgetSize)
	if got := heavy.Received(); got != fit {
		t.Fatalf("%d messages accepted, want %d (the budget's)", got, fit)
	}
	if err := light.Deliver(ctx, 1, msgs[:8]); err != nil {
		t.Fatalf("light session's Deliver over the budget: %v", err)
	}
	wantBudget(t, "both queued", b, int64(fit+8)*budgetSize, 2)

	done := make(chan error, 1)
	go func() { done <- heavy.Deliver(ctx, fit+1, msgs[fit:fit+1]) }()
	if got := recvAll(t, heavy, int(fit)); got[0] != string(msgs[0].Data) {
		t.Fatalf("Recv = %.8q..., want the first message", got[0])
	}
	if err := <-done; err != nil {
		t.Fatalf("Deliver once the application read: %v", err)
	}
	// What the application has not read when its session ends leaves the
	// budget then; Recv returns it all the same, counting nothing twice.
	heavy.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	light.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	wantBudget(t, "both ended", b, 0, 0)
	recvAll(t, heavy, 1)
	recvAll(t, light, 8)
	wantBudget(t, "both ended and read", b, 0, 0)
}

// TestQueueBudgetShared checks a topic's delivery (SendShared) over the
// budget: the session is closed with ReasonQueueBudget under
// SlowConsumerClose and SlowConsumerBlock, and the message dropped under
// SlowConsumerDrop.
func TestQueueBudgetShared(t *testing.T) {
	for _, policy := range []session.SlowConsumerPolicy{session.SlowConsumerClose, session.SlowConsumerBlock, session.SlowConsumerDrop} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := budgetConfig(policy)
			s := newSession(t, cfg)
			newSession(t, cfg)
			var err error
			for i := 0; err == nil && i < 4*budgetBytes/budgetSize; i++ {
				err = s.SendShared(budgetMessage(i), nil)
			}
			if policy != session.SlowConsumerDrop {
				wantBudgetClose(t, "SendShared over the budget", err)
			} else if !errors.Is(err, session.ErrDropped) || !errors.Is(err, session.ErrQueueBudget) || s.Err() != nil {
				t.Errorf("SendShared over the budget = %v (session %v), want ErrDropped and ErrQueueBudget", err, s.Err())
			}
		})
	}
}

// TestQueueBudgetFairShare checks FairShare: the budget divided among the
// live sessions' queues, two each, at least MinFairShare.
func TestQueueBudgetFairShare(t *testing.T) {
	cfg := testConfig()
	cfg.QueueBudget = session.NewQueueBudget(1 << 20)
	b := cfg.QueueBudget
	if got := b.FairShare(); got != 1<<20 {
		t.Errorf("FairShare() with no session = %d, want the whole budget", got)
	}
	var ss []*session.Local
	for range 32 {
		ss = append(ss, newSession(t, cfg))
	}
	if got := b.FairShare(); got != session.MinFairShare {
		t.Errorf("FairShare() with 32 sessions = %d, want MinFairShare (%d)", got, session.MinFairShare)
	}
	for _, s := range ss[:28] {
		s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	}
	if got := b.FairShare(); got != 1<<17 {
		t.Errorf("FairShare() with 4 sessions = %d, want %d", got, 1<<17)
	}
}

// TestQueueBudgetReleasedOnce ends many sessions with both queues full, in
// every way a session ends (its client's close, Abort, a close frame
// delivered, the resume window, a lost lease, a takeover's session, and
// OnMessage taking what was queued), and checks that the budget is back to
// 0: a byte counted and never released would shrink it for good, and one
// released twice would widen it.
func TestQueueBudgetReleasedOnce(t *testing.T) {
	const perKind = 20
	cfg := testConfig()
	cfg.MaxQueuedBytes = 16 * budgetSize
	cfg.QueueBudget = session.NewQueueBudget(1 << 30)
	b := cfg.QueueBudget
	ctx := testContext(t)
	// fill queues messages both ways until each queue is full (which
	// closes the session, 4002): the application reads none of them, the
	// client acknowledges none.
	fill := func(t *testing.T, s *session.Local) {
		t.Helper()
		t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusGoingAway}) })
		msgs := make([]wire.Message, 20)
		for i := range msgs {
			msgs[i] = budgetMessage(i)
		}
		short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		defer cancel()
		if err := s.Deliver(short, 1, msgs); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Deliver into a full queue = %v, want the deadline", err)
		}
		_, err := fillOut(t, s)
		wantClose(t, "Send into a full queue", err, wire.StatusSlowConsumer)
		// Other sessions may be ending meanwhile: the budget holds this
		// one's at least.
		sent, acked := s.Sent()
		if own := int64(sent-acked+s.Received()) * budgetSize; b.Used() < own {
			t.Fatalf("budget used %d, and the session holds %d", b.Used(), own)
		}
	}
	closeFromClient := func(t *testing.T, s *session.Local) {
		s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	}
	plain := func(*testing.T) *session.Local { return session.New(cfg, session.RequestInfo{}, nil) }
	ends := []struct {
		name string
		open func(t *testing.T) *session.Local
		end  func(t *testing.T, s *session.Local)
	}{
		{"client close", plain, closeFromClient},
		{"abort", plain, func(t *testing.T, s *session.Local) {
			s.Abort(wire.CloseError{Code: wire.StatusGoingAway})
		}},
		{"close frame delivered", plain, func(t *testing.T, s *session.Local) {
			l := attach(t, s, session.AttachOptions{Transport: "test"})
			for b := pull(t, l, 1<<20); b.Close == nil; b = pull(t, l, 1<<20) {
			}
			l.Detach()
		}},
		{"resume window", plain, func(t *testing.T, s *session.Local) { s.Expire(time.Millisecond) }},
		{"lease lost", func(t *testing.T) *session.Local {
			s, err := session.NewJournaled(cfg, session.RequestInfo{}, func(string, string) (session.Journal, error) {
				return nopJournal{}, nil
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, func(t *testing.T, s *session.Local) { s.LeaseLost(errors.New("taken over")) }},
		{"restored", func(t *testing.T) *session.Local {
			out := make([]wire.Message, 8)
			for i := range out {
				out[i] = budgetMessage(i)
			}
			s, err := session.Restore(cfg, session.RequestInfo{}, session.Restored{ID: "n.r", Token: "t", Out: out}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, closeFromClient},
		{"on message", plain, func(t *testing.T, s *session.Local) {
			s.OnMessage(func(wire.Message) {})
			closeFromClient(t, s)
		}},
	}
	var ended []*session.Local
	for _, tt := range ends {
		t.Run(tt.name, func(t *testing.T) {
			for range perKind {
				s := tt.open(t)
				fill(t, s)
				tt.end(t, s)
				ended = append(ended, s)
			}
		})
	}
	for _, s := range ended {
		waitFinished(t, s)
	}
	wantBudget(t, "every session ended", b, 0, 0)
	// Recv still returns what each session received; the budget has let
	// go of it already.
	for _, s := range ended {
		for {
			if _, err := s.Recv(ctx); err != nil {
				break
			}
		}
	}
	wantBudget(t, "every session ended and read", b, 0, 0)
}

// TestQueueBudgetConcurrent runs sessions whose application sends, reads
// and whose client delivers and acknowledges at once, under a budget small
// enough to refuse them, and ends them at random moments: once they have
// all ended, the budget is back to 0.
func TestQueueBudgetConcurrent(t *testing.T) {
	const sessions = 16
	for _, policy := range []session.SlowConsumerPolicy{session.SlowConsumerClose, session.SlowConsumerBlock, session.SlowConsumerDrop} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxQueuedBytes = 64 * budgetSize
			cfg.SlowConsumer = policy
			cfg.QueueBudget = session.NewQueueBudget(8 * 64 * budgetSize)
			b := cfg.QueueBudget
			ctx, cancel := context.WithTimeout(testContext(t), time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for i := range sessions {
				s := session.New(cfg, session.RequestInfo{}, nil)
				l := attach(t, s, session.AttachOptions{Transport: "test"})
				rng := rand.New(rand.NewPCG(uint64(i), 1))
				stop := rng.IntN(400) + 100
				wg.Go(func() { // the application's sender
					for j := 0; j < stop && s.Err() == nil; j++ {
						s.Send(ctx, budgetMessage(j))
					}
					s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
				})
				wg.Go(func() { // the application's reader
					for {
						if _, err := s.Recv(ctx); err != nil {
							return
						}
					}
				})
				wg.Go(func() { // the client: delivers and reads, sometimes
					seq := uint64(1)
					for ctx.Err() == nil && !s.Finished() {
						if i%2 == 0 { // half the clients never acknowledge
							got, err := l.Pull(ctx, time.Millisecond, 8*budgetSize)
							if err != nil {
								return
							}
							if n := len(got.Messages); n > 0 {
								s.Acknowledge(got.First + uint64(n) - 1)
							}
						}
						short, cancel := context.WithTimeout(ctx, time.Millisecond)
						if s.Deliver(short, seq, []wire.Message{budgetMessage(int(seq))}) == nil {
							seq++
						}
						cancel()
					}
				})
				t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusGoingAway}) })
			}
			wg.Wait()
			wantBudget(t, "every session ended", b, 0, 0)
		})
	}
}
