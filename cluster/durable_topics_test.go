package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/wire"
)

// subscribeTo has the session's node subscribe it to topic, and waits for
// the echo that says it has.
func subscribeTo(t *testing.T, ctx context.Context, s *client.Session, topic string) {
	t.Helper()
	if err := s.Send(ctx, relayText("subscribe "+topic)); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "subscribe "+topic {
		t.Fatalf("Recv = %q, %v", m.Data, err)
	}
}

// publisher publishes numbered messages ("<prefix><n>", from 0) to a
// topic through one node.
type publisher struct {
	d      *durable
	node   int
	topic  string
	prefix string
	n      int // published so far
}

func (p *publisher) publish(ctx context.Context, k int) error {
	for range k {
		m := relayText(p.prefix + strconv.Itoa(p.n))
		if err := p.d.Nodes[p.node].Server.Publish(ctx, p.topic, m, nil); err != nil {
			return fmt.Errorf("publish %s%d: %w", p.prefix, p.n, err)
		}
		p.n++
	}
	return nil
}

// publishExcluding publishes a message that is not for session
// (PublishOptions.Exclude), and k numbered ones after it.
func (p *publisher) publishExcluding(ctx context.Context, session string, k int) error {
	opts := &broker.PublishOptions{Exclude: session}
	if err := p.d.Nodes[p.node].Server.Publish(ctx, p.topic, relayText("excluded"), opts); err != nil {
		return err
	}
	return p.publish(ctx, k)
}

// throughTakeover publishes one message at a time, pause apart (a steady
// trickle, not a flood), until session id was taken over; then k more and
// "end".
func (p *publisher) throughTakeover(ctx context.Context, id string, pause time.Duration, k int) error {
	for !p.d.wasTakenOver(id) && ctx.Err() == nil {
		if err := p.publish(ctx, 1); err != nil {
			return err
		}
		time.Sleep(pause)
	}
	if err := p.publish(ctx, k); err != nil {
		return err
	}
	return p.d.Nodes[p.node].Server.Publish(ctx, p.topic, relayText("end"), nil)
}

// readResult is what readNumberedFrom returned.
type readResult struct {
	n   int
	err error
}

// readAll runs readNumberedFrom on a goroutine of its own.
func readAll(ctx context.Context, s *client.Session, prefix string, first int) <-chan readResult {
	read := make(chan readResult, 1)
	go func() {
		n, err := readNumberedFrom(ctx, s, prefix, first)
		read <- readResult{n, err}
	}()
	return read
}

// readNumbered reads the messages of a publisher with prefix until "end",
// and returns an error unless they are 0, 1, 2... each once, in order.
func readNumbered(ctx context.Context, s *client.Session, prefix string) (int, error) {
	return readNumberedFrom(ctx, s, prefix, 0)
}

// readNumberedFrom is readNumbered for messages numbered from first on.
func readNumberedFrom(ctx context.Context, s *client.Session, prefix string, first int) (int, error) {
	for n := first; ; n++ {
		m, err := s.Recv(ctx)
		if err != nil {
			return n, fmt.Errorf("after %d messages: %w", n, err)
		}
		if string(m.Data) == "end" {
			return n, nil
		}
		if want := prefix + strconv.Itoa(n); string(m.Data) != want {
			return n, fmt.Errorf("message %d is %q, want %q", n, m.Data, want)
		}
	}
}

// TestDurableTopicsTakeover: with a topic history, a session whose owner is
// killed while its topic is published to receives every message of the
// topic exactly once, in order: those published while no node held it
// (replayed from the history at the takeover), those published during the
// takeover, and the later ones; and none of those published with it as
// PublishOptions.Exclude.
func TestDurableTopicsTakeover(t *testing.T) {
	for _, name := range []string{"websocket", "longpoll"} {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			d := startDurableWith(t, 3, &redisstate.HistoryOptions{})
			s := dialDurable(t, ctx, d.URL, name)
			id := s.ID()
			subscribeTo(t, ctx, s, "news")
			read := readAll(ctx, s, "p", 0)
			p := &publisher{d: d, node: 2, topic: "news", prefix: "p"}
			if err := p.publish(ctx, 200); err != nil {
				t.Fatal(err)
			}
			// The front holds the client's requests: no node takes the
			// session over while its owner is dead and these are published.
			resume := d.holdFront()
			d.kill(0)
			var err error
			for range 20 {
				if err = p.publishExcluding(ctx, id, 10); err != nil {
					break
				}
			}
			resume()
			if err != nil {
				t.Fatal(err)
			}
			// Publishes go on while the session is taken over, and after.
			if err := p.throughTakeover(ctx, id, 5*time.Millisecond, 200); err != nil {
				t.Fatal(err)
			}
			r := <-read
			if r.err != nil || r.n != p.n {
				t.Fatalf("received %d of %d messages: %v", r.n, p.n, r.err)
			}
			if s.ID() != id {
				t.Fatalf("ID() = %q, was %q", s.ID(), id)
			}
		})
	}
}

// stallingHistory is a node's real History whose Range of topic from
// offset from waits until its context ends and then fails, as a History
// that cannot be reached or answers too slowly does, for the first calls
// (stalls, shared by the nodes).
type stallingHistory struct {
	cluster.History
	topic   string
	from    uint64
	stalls  *atomic.Int64 // stalls left
	stalled *atomic.Int64 // calls that stalled and failed
}

func (h *stallingHistory) Range(ctx context.Context, topic string, from uint64, limit int) ([]cluster.HistoryEntry, error) {
	if topic == h.topic && from == h.from && h.stalls.Add(-1) >= 0 {
		<-ctx.Done()
		h.stalled.Add(1)
		return nil, fmt.Errorf("%w: stalled: %w", cluster.ErrHistoryUnavailable, ctx.Err())
	}
	return h.History.Range(ctx, topic, from, limit)
}

// TestDurableTopicsTakeoverHistoryStalls: when the history does not give
// what a session taken over missed of a topic (it stalls until the fetch
// gives up), nothing is lost yet: the takeover fails (the node lets the
// session go, its state kept), the client tries again, and the next
// takeover, the history answering, delivers every message of the topic
// exactly once, in order: those published while no node held it, during
// the failed takeover and after. The session never closes with 4000 and
// never starts anew; the failed takeover leaves no subscription behind.
func TestDurableTopicsTakeoverHistoryStalls(t *testing.T) {
	ctx := testContext(t)
	var stalls, stalled atomic.Int64
	// Two stalls: the first fetch waits for NodeTimeout, and the second
	// one, after the failures have lasted that long, makes the takeover
	// give up.
	stalls.Store(2)
	const before = 200 // the session has these when its owner dies
	d := startDurableWrapped(t, 3, &redisstate.HistoryOptions{MaxLen: 100000}, func(h cluster.History) cluster.History {
		return &stallingHistory{History: h, topic: "news", from: before + 1, stalls: &stalls, stalled: &stalled}
	})
	s := dialDurable(t, ctx, d.URL, "websocket")
	id := s.ID()
	subscribeTo(t, ctx, s, "news")
	p := &publisher{d: d, node: 2, topic: "news", prefix: "p"}
	if err := p.publish(ctx, before); err != nil {
		t.Fatal(err)
	}
	// Received, so stored: the takeover replays from before+1.
	for n := range before {
		if m, err := s.Recv(ctx); err != nil || string(m.Data) != "p"+strconv.Itoa(n) {
			t.Fatalf("Recv = %q, %v; want p%d", m.Data, err, n)
		}
	}
	read := readAll(ctx, s, "p", before)
	resume := d.holdFront()
	d.kill(0)
	err := p.publish(ctx, 100)
	resume()
	if err != nil {
		t.Fatal(err)
	}
	// Publishes go on during the failed takeover (held for the session,
	// then dropped with it), the next one and after.
	if err := p.throughTakeover(ctx, id, 20*time.Millisecond, 100); err != nil {
		t.Fatal(err)
	}
	r := <-read
	if r.err != nil || r.n != p.n {
		t.Fatalf("received up to %d of %d messages: %v", r.n, p.n, r.err)
	}
	if k := stalled.Load(); k != 2 {
		t.Fatalf("the history stalled %d times, want 2 (one takeover that failed)", k)
	}
	d.mu.Lock()
	restored := 0
	for _, taken := range d.takenOver {
		if taken == id {
			restored++
		}
	}
	d.mu.Unlock()
	if restored != 1 {
		t.Fatalf("the application saw the session taken over %d times, want 1", restored)
	}
	// The failed takeover's subscription is undone: every live node's
	// presence comes to list the session once (the dead owner's entry
	// goes with it).
	for i := 1; i < len(d.Nodes); i++ {
		for {
			infos, err := d.presenceOf(ctx, i, "news", id)
			if err == nil && len(infos) == 1 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d's presence lists the session %d times (%v), want once", i, len(infos), err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	exchange(t, ctx, s, "after", 10)
}

// TestDurableTopicsTakeoverGap: when the history no longer holds what a
// session taken over missed of a topic, the session closes with 4000
// "topic gap" (its other topics are not joined); a session taken over with it whose topic's history is whole
// goes on undisturbed, its messages exactly once, in order.
func TestDurableTopicsTakeoverGap(t *testing.T) {
	ctx := testContext(t)
	d := startDurableWith(t, 3, &redisstate.HistoryOptions{MaxLen: 5})
	gapped := dialTransport(t, ctx, d.URL, "websocket", nil)
	whole := dialDurable(t, ctx, d.URL, "websocket")
	subscribeTo(t, ctx, gapped, "news")
	subscribeTo(t, ctx, gapped, "quiet") // restored after news, whose gap closes the session
	subscribeTo(t, ctx, whole, "calm")
	news := &publisher{d: d, node: 1, topic: "news", prefix: "n"}
	calm := &publisher{d: d, node: 1, topic: "calm", prefix: "c"}
	resume := d.holdFront()
	d.kill(0)
	err := errors.Join(news.publish(ctx, 20), calm.publish(ctx, 2)) // news: 15 beyond MaxLen
	resume()
	if err != nil {
		t.Fatal(err)
	}
	expectTopicGap(t, ctx, gapped, "n")
	for !d.wasTakenOver(whole.ID()) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	// calm's history holds 5: the 2 above, these 2 and "end".
	if err := errors.Join(calm.publish(ctx, 2), d.Nodes[2].Server.Publish(ctx, "calm", relayText("end"), nil)); err != nil {
		t.Fatal(err)
	}
	if n, err := readNumbered(ctx, whole, "c"); err != nil || n != calm.n {
		t.Fatalf("received %d of %d messages: %v", n, calm.n, err)
	}
	exchange(t, ctx, whole, "after", 10)
}

// TestDurableTopicsTakeoverWithoutHistory: with no topic history nothing
// says what a session subscribed to a topic missed while no node held it,
// so a takeover closes it with 4000 "topic gap" instead of going on as if
// nothing was published; a session taken over with no topics goes on.
func TestDurableTopicsTakeoverWithoutHistory(t *testing.T) {
	ctx := testContext(t)
	d := startDurable(t, 3)
	subscribed := dialTransport(t, ctx, d.URL, "websocket", nil)
	plain := dialDurable(t, ctx, d.URL, "websocket")
	subscribeTo(t, ctx, subscribed, "news")
	exchange(t, ctx, plain, "before", 5)
	resume := d.holdFront()
	d.kill(0)
	news := &publisher{d: d, node: 1, topic: "news", prefix: "n"}
	err := news.publish(ctx, 3) // no node holds the subscribed session
	resume()
	if err != nil {
		t.Fatal(err)
	}
	expectTopicGap(t, ctx, subscribed, "") // nothing published while no node held it arrives
	exchange(t, ctx, plain, "after", 10)
	if !d.wasTakenOver(plain.ID()) {
		t.Fatalf("the session without topics was not taken over")
	}
}

// expectTopicGap reads s until it ends, and fails unless it ends with 4000
// "topic gap" after messages that all start with prefix (none when prefix
// is "").
func expectTopicGap(t *testing.T, ctx context.Context, s *client.Session, prefix string) {
	t.Helper()
	for {
		m, err := s.Recv(ctx)
		var ce wire.CloseError
		if err == nil && (prefix == "" || !strings.HasPrefix(string(m.Data), prefix)) {
			t.Fatalf("Recv = %q before the close", m.Data)
		}
		if err != nil && (!errors.As(err, &ce) || ce.Code != wire.StatusResumeGap || ce.Reason != broker.GapReason) {
			t.Fatalf("Recv: %v, want close %d %q", err, wire.StatusResumeGap, broker.GapReason)
		}
		if err != nil {
			return
		}
	}
}
