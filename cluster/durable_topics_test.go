package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/client"
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

// readNumbered reads the messages of a publisher with prefix until "end",
// and returns an error unless they are 0, 1, 2... each once, in order.
func readNumbered(ctx context.Context, s *client.Session, prefix string) (int, error) {
	for n := 0; ; n++ {
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
			type result struct {
				n   int
				err error
			}
			read := make(chan result, 1)
			go func() {
				n, err := readNumbered(ctx, s, "p")
				read <- result{n, err}
			}()
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
			for !d.wasTakenOver(id) && ctx.Err() == nil {
				if err := p.publish(ctx, 1); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond) // a steady trickle, not a flood
			}
			if err := p.publish(ctx, 200); err != nil {
				t.Fatal(err)
			}
			if err := d.Nodes[2].Server.Publish(ctx, "news", relayText("end"), nil); err != nil {
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
