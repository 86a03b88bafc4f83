package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter is a Subscriber that counts what it is given.
type counter struct {
	id  string
	got atomic.Int64
}

func (c *counter) ID() string                 { return c.id }
func (c *counter) Deliver(d *broker.Delivery) { c.got.Add(1) }

var topicTests = []struct {
	topic string
	valid bool
}{
	{"a", true},
	{"room:go", true},
	{"prices/EUR-USD_1.5@x", true},
	{strings.Repeat("x", broker.MaxTopicBytes), true},
	{"", false},
	{strings.Repeat("x", broker.MaxTopicBytes+1), false},
	{"room go", false},
	{"room*", false},
	{"prices.>", false},
	{"é", false},
	{"a\nb", false},
	{"a\x00", false},
}

func TestCheckTopic(t *testing.T) {
	for _, tt := range topicTests {
		err := broker.CheckTopic(tt.topic)
		if (err == nil) != tt.valid || (err != nil && !errors.Is(err, broker.ErrInvalidTopic)) {
			t.Errorf("CheckTopic(%q) = %v, want valid %v", tt.topic, err, tt.valid)
		}
	}
}

// TestMemoryInvalidTopic: every method refuses an invalid name and changes
// nothing.
func TestMemoryInvalidTopic(t *testing.T) {
	ctx := context.Background()
	b := broker.NewMemory()
	c := &counter{id: "s"}
	if _, err := b.Subscribe(ctx, "bad topic", c, nil); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Errorf("Subscribe = %v, want ErrInvalidTopic", err)
	}
	if _, err := b.Unsubscribe(ctx, "", "s"); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Errorf("Unsubscribe = %v, want ErrInvalidTopic", err)
	}
	if err := b.Publish(ctx, "bad topic", textMessage("x"), nil); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Errorf("Publish = %v, want ErrInvalidTopic", err)
	}
	if _, err := b.Presence(ctx, "bad topic"); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Errorf("Presence = %v, want ErrInvalidTopic", err)
	}
	if c.got.Load() != 0 {
		t.Errorf("the subscriber got %d messages, want 0", c.got.Load())
	}
}

func textMessage(s string) wire.Message {
	return wire.Message{Type: wire.Text, Data: []byte(s)}
}

// TestMemorySubscribeTwice: a second Subscribe changes nothing (info
// included) and reports no join; messages arrive once.
func TestMemorySubscribeTwice(t *testing.T) {
	ctx := context.Background()
	b := broker.NewMemory()
	c := &counter{id: "s"}
	if joined, err := b.Subscribe(ctx, "t", c, []byte("first")); !joined || err != nil {
		t.Fatalf("Subscribe = %v, %v; want true, nil", joined, err)
	}
	if joined, err := b.Subscribe(ctx, "t", c, []byte("second")); joined || err != nil {
		t.Fatalf("Subscribe again = %v, %v; want false, nil", joined, err)
	}
	b.Publish(ctx, "t", textMessage("x"), nil)
	if n := c.got.Load(); n != 1 {
		t.Errorf("delivered %d times, want 1", n)
	}
	members, _ := b.Presence(ctx, "t")
	if len(members) != 1 || string(members[0].Info) != "first" {
		t.Errorf("Presence = %+v, want one member with info %q", members, "first")
	}
}

// TestMemoryNoSubscribers: publishing to a topic nobody is subscribed to,
// or nobody is any more, is not an error and delivers nothing.
func TestMemoryNoSubscribers(t *testing.T) {
	ctx := context.Background()
	b := broker.NewMemory()
	if err := b.Publish(ctx, "empty", textMessage("x"), nil); err != nil {
		t.Fatalf("Publish to a topic never subscribed = %v, want nil", err)
	}
	c := &counter{id: "s"}
	b.Subscribe(ctx, "t", c, nil)
	if left, err := b.Unsubscribe(ctx, "t", "s"); !left || err != nil {
		t.Fatalf("Unsubscribe = %v, %v; want true, nil", left, err)
	}
	if left, err := b.Unsubscribe(ctx, "t", "s"); left || err != nil {
		t.Fatalf("Unsubscribe again = %v, %v; want false, nil", left, err)
	}
	if err := b.Publish(ctx, "t", textMessage("x"), nil); err != nil || c.got.Load() != 0 {
		t.Fatalf("Publish after the last left = %v, delivered %d; want nil, 0", err, c.got.Load())
	}
	if members, err := b.Presence(ctx, "t"); len(members) != 0 || err != nil {
		t.Fatalf("Presence = %v, %v; want none", members, err)
	}
}

// TestMemoryPresenceEvents: joins and leaves are reported in order; a
// second Subscribe and an Unsubscribe of a non-member are not.
func TestMemoryPresenceEvents(t *testing.T) {
	ctx := context.Background()
	b := broker.NewMemory()
	events := make(chan broker.PresenceEvent, 8)
	b.OnPresence(func(e broker.PresenceEvent) { events <- e })
	a, z := &counter{id: "a"}, &counter{id: "z"}
	b.Subscribe(ctx, "t", a, []byte("A"))
	b.Subscribe(ctx, "t", a, []byte("again"))
	b.Subscribe(ctx, "u", z, nil)
	b.Unsubscribe(ctx, "t", "z")
	b.Unsubscribe(ctx, "t", "a")
	want := []broker.PresenceEvent{
		{Topic: "t", Change: broker.Joined, Member: broker.Member{Session: "a", Info: []byte("A")}},
		{Topic: "u", Change: broker.Joined, Member: broker.Member{Session: "z"}},
		{Topic: "t", Change: broker.Left, Member: broker.Member{Session: "a", Info: []byte("A")}},
	}
	timeout := time.After(10 * time.Second)
	for i, w := range want {
		select {
		case got := <-events:
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Fatalf("event #%d = %+v, want %+v", i, got, w)
			}
		case <-timeout:
			t.Fatalf("event #%d: none, want %+v", i, w)
		}
	}
}

// TestFanoutEveryoneOnce: a publish to many subscribers, spread over
// goroutines, reaches each exactly once but the excluded one, while others
// subscribe and leave.
func TestFanoutEveryoneOnce(t *testing.T) {
	const n, publishes = 10_000, 5
	ctx := context.Background()
	b := broker.NewMemory()
	subs := make([]*counter, n)
	for i := range subs {
		subs[i] = &counter{id: fmt.Sprint(i)}
		b.Subscribe(ctx, "t", subs[i], nil)
	}
	var wg sync.WaitGroup
	wg.Go(func() { // churn beside the publishes
		for i := range 1000 {
			c := &counter{id: fmt.Sprint("churn", i)}
			b.Subscribe(ctx, "t", c, nil)
			b.Unsubscribe(ctx, "t", c.id)
		}
	})
	for range publishes {
		if err := b.Publish(ctx, "t", textMessage("x"), &broker.PublishOptions{Exclude: "7"}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i, c := range subs {
		want := int64(publishes)
		if i == 7 {
			want = 0
		}
		if got := c.got.Load(); got != want {
			t.Fatalf("subscriber %d got %d messages, want %d", i, got, want)
		}
	}
}

// sequenced is a Subscriber that notes when it was given a message, on a
// clock that the subscribers of a test share.
type sequenced struct {
	id    string
	clock *atomic.Int64
	at    atomic.Int64 // the clock's value at the last delivery
}

func (s *sequenced) ID() string               { return s.id }
func (s *sequenced) Deliver(*broker.Delivery) { s.at.Store(s.clock.Add(1)) }

// TestMemoryDeliversInSubscriptionOrder: a publish to fewer subscribers
// than one goroutine takes reaches them in the order they subscribed; one
// that left and subscribed again comes last, and the ones that left leave
// no gap in the order of the rest.
func TestMemoryDeliversInSubscriptionOrder(t *testing.T) {
	ctx := context.Background()
	b := broker.NewMemory()
	var clock atomic.Int64
	subs := make([]*sequenced, 100)
	for i := range subs {
		subs[i] = &sequenced{id: fmt.Sprint(i), clock: &clock}
		if ok, err := b.Subscribe(ctx, "t", subs[i], nil); !ok || err != nil {
			t.Fatalf("Subscribe(%d) = %v, %v", i, ok, err)
		}
	}
	var want []*sequenced // in the order of delivery
	for i, s := range subs {
		if i%3 != 0 {
			if ok, err := b.Unsubscribe(ctx, "t", s.id); !ok || err != nil {
				t.Fatalf("Unsubscribe(%d) = %v, %v", i, ok, err)
			}
		} else if i != 0 {
			want = append(want, s)
		}
	}
	b.Unsubscribe(ctx, "t", "0")
	b.Subscribe(ctx, "t", subs[0], nil)
	want = append(want, subs[0])
	if err := b.Publish(ctx, "t", textMessage("x"), nil); err != nil {
		t.Fatal(err)
	}
	for i, s := range want {
		if got := s.at.Load(); got != int64(i+1) {
			t.Fatalf("subscriber %s got the message %d-th, want %d-th", s.id, got, i+1)
		}
	}
	for i, s := range subs {
		if i%3 != 0 && s.at.Load() != 0 {
			t.Fatalf("subscriber %d got a message after it left", i)
		}
	}
}
