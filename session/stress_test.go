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

// TestStress runs both directions at once under -race. Several goroutines
// Send while a reader pulls over links it keeps replacing (superseding
// the old one, or detaching it first), sometimes loses a batch as a cut
// connection would, and acknowledges as it goes; meanwhile a client
// goroutine delivers overlapping retries and the application receives.
// Every message must arrive exactly once, in each sender's order.
func TestStress(t *testing.T) {
	const (
		senders   = 4
		perSender = 300
		inbound   = 1000
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	cfg := testConfig()
	cfg.MaxQueuedBytes = 200 // small: Send waits for acknowledgements
	cfg.SlowConsumer = session.SlowConsumerBlock
	s := newSession(t, cfg)
	ctx := testContext(t)

	var wg sync.WaitGroup
	errc := make(chan error, senders+3)
	for g := range senders {
		wg.Go(func() {
			for i := range perSender {
				if err := s.Send(ctx, text(fmt.Sprintf("%d:%d", g, i))); err != nil {
					errc <- fmt.Errorf("sender %d: Send(%d) = %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Go(func() { errc <- deliverWithRetries(ctx, s, inbound, rand.New(rand.NewPCG(seed, 1))) })
	wg.Go(func() {
		for i := range inbound {
			m, err := s.Recv(ctx)
			if err != nil {
				errc <- fmt.Errorf("Recv #%d = %w", i+1, err)
				return
			}
			if got, want := string(m.Data), fmt.Sprint(i+1); got != want {
				errc <- fmt.Errorf("Recv #%d = %q, want %q", i+1, got, want)
				return
			}
		}
	})
	wg.Go(func() { errc <- readOverLinks(ctx, s, senders, perSender, rand.New(rand.NewPCG(seed, 2))) })

	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	if sent, _ := s.Sent(); sent != senders*perSender {
		t.Errorf("Sent() = %d, want %d", sent, senders*perSender)
	}
}

// deliverWithRetries delivers messages "1".."n" in random chunks, each
// sometimes repeated and sometimes starting before the last one ended.
func deliverWithRetries(ctx context.Context, s *session.Local, n int, rnd *rand.Rand) error {
	for next := 1; next <= n; {
		start := max(1, next-rnd.IntN(4))
		end := min(n, next+rnd.IntN(8))
		msgs := make([]wire.Message, 0, end-start+1)
		for i := start; i <= end; i++ {
			msgs = append(msgs, text(fmt.Sprint(i)))
		}
		for range 1 + rnd.IntN(2) {
			if err := s.Deliver(ctx, uint64(start), msgs); err != nil {
				return fmt.Errorf("Deliver(%d, %d messages) = %w", start, len(msgs), err)
			}
		}
		next = end + 1
	}
	return nil
}

// readOverLinks plays the client's side of the downstream until it has
// every message of every sender.
func readOverLinks(ctx context.Context, s *session.Local, senders, perSender int, rnd *rand.Rand) error {
	total := uint64(senders * perSender)
	last := make([]int, senders)
	for i := range last {
		last[i] = -1
	}
	var received uint64
	var old session.Link
	for received < total {
		l, err := s.Attach(session.AttachOptions{Transport: "stress", Received: received, AcksInBand: rnd.IntN(2) == 0})
		if err != nil {
			return fmt.Errorf("Attach(Received %d) = %w", received, err)
		}
		if old != nil {
			if _, err := old.Pull(ctx, longWait, 1<<20); !errors.Is(err, session.ErrSuperseded) {
				return fmt.Errorf("Pull on a replaced link = %v, want ErrSuperseded", err)
			}
			old.Detach()
		}
	pulls:
		for range 1 + rnd.IntN(6) {
			b, err := l.Pull(ctx, time.Millisecond, 1+rnd.IntN(64))
			if err != nil {
				return fmt.Errorf("Pull = %w", err)
			}
			if len(b.Messages) == 0 {
				continue
			}
			if b.First != received+1 {
				return fmt.Errorf("Pull First = %d, want %d", b.First, received+1)
			}
			if rnd.IntN(8) == 0 {
				break pulls // the connection broke: this batch never arrived
			}
			for _, m := range b.Messages {
				var g, i int
				if _, err := fmt.Sscanf(string(m.Data), "%d:%d", &g, &i); err != nil || g < 0 || g >= senders {
					return fmt.Errorf("message %d = %q, not from a sender", received+1, m.Data)
				}
				if i != last[g]+1 {
					return fmt.Errorf("message %d = %q, want %d:%d", received+1, m.Data, g, last[g]+1)
				}
				last[g] = i
				received++
			}
			if rnd.IntN(3) == 0 {
				if err := s.Acknowledge(received - uint64(rnd.IntN(2))); err != nil {
					return fmt.Errorf("Acknowledge = %w", err)
				}
			}
		}
		if rnd.IntN(2) == 0 {
			l.Detach() // gone before the next attach, rather than superseded
		}
		old = l
	}
	old.Detach()
	return nil
}
