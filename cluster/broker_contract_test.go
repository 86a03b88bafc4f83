package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/brokertest"
	"github.com/tetherkit/tether/wire"
)

// What every broker.Broker must do on the node it runs on, checked on
// broker.Memory and on one node of a three-node cluster Broker alike.

// contractBrokers makes the brokers the contract runs on.
var contractBrokers = []struct {
	name string
	make func(t *testing.T) broker.Broker
}{
	{"Memory", func(*testing.T) broker.Broker { return broker.NewMemory() }},
	{"Cluster", func(t *testing.T) broker.Broker {
		return brokertest.Start(t, cluster.NewMemoryBus().Connect, 3, brokertest.QuickOptions())[0].Broker
	}},
}

func TestBrokerContract(t *testing.T) {
	for _, mk := range contractBrokers {
		t.Run(mk.name, func(t *testing.T) {
			for _, c := range contractTests {
				t.Run(c.name, func(t *testing.T) { c.run(t, mk.make(t)) })
			}
		})
	}
}

func textMessage(s string) wire.Message {
	return wire.Message{Type: wire.Text, Data: []byte(s)}
}

var contractTests = []struct {
	name string
	run  func(t *testing.T, b broker.Broker)
}{
	{"InvalidTopic", contractInvalidTopic},
	{"SubscribeTwice", contractSubscribeTwice},
	{"NoSubscribers", contractNoSubscribers},
	{"PresenceEvents", contractPresenceEvents},
	{"FanoutEveryoneOnce", contractFanoutEveryoneOnce},
	{"ContextEnded", contractContextEnded},
}

// contractInvalidTopic: every method refuses an invalid name and changes
// nothing.
func contractInvalidTopic(t *testing.T, b broker.Broker) {
	ctx := context.Background()
	c := &brokertest.Counter{Session: "s"}
	for _, topic := range []string{"", "bad topic", "prices.>", "a*"} {
		if _, err := b.Subscribe(ctx, topic, c, nil); !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalidTopic", topic, err)
		}
		if _, err := b.Unsubscribe(ctx, topic, "s"); !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Unsubscribe(%q) = %v, want ErrInvalidTopic", topic, err)
		}
		if err := b.Publish(ctx, topic, textMessage("x"), nil); !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidTopic", topic, err)
		}
		if _, err := b.Presence(ctx, topic); !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Presence(%q) = %v, want ErrInvalidTopic", topic, err)
		}
	}
	if c.Got.Load() != 0 {
		t.Errorf("the subscriber got %d messages, want 0", c.Got.Load())
	}
}

// contractSubscribeTwice: a second Subscribe changes nothing (info
// included) and reports no join; messages arrive once.
func contractSubscribeTwice(t *testing.T, b broker.Broker) {
	ctx := context.Background()
	c := &brokertest.Counter{Session: "s"}
	if joined, err := b.Subscribe(ctx, "t", c, []byte("first")); !joined || err != nil {
		t.Fatalf("Subscribe = %v, %v; want true, nil", joined, err)
	}
	if joined, err := b.Subscribe(ctx, "t", c, []byte("second")); joined || err != nil {
		t.Fatalf("Subscribe again = %v, %v; want false, nil", joined, err)
	}
	if err := b.Publish(ctx, "t", textMessage("x"), nil); err != nil {
		t.Fatal(err)
	}
	if n := c.Got.Load(); n != 1 {
		t.Errorf("delivered %d times, want 1", n)
	}
	members, _ := b.Presence(ctx, "t")
	if len(members) != 1 || string(members[0].Info) != "first" {
		t.Errorf("Presence = %+v, want one member with info %q", members, "first")
	}
}

// contractNoSubscribers: publishing to a topic nobody is subscribed to, or
// nobody is any more, is not an error and delivers nothing.
func contractNoSubscribers(t *testing.T, b broker.Broker) {
	ctx := context.Background()
	if err := b.Publish(ctx, "empty", textMessage("x"), nil); err != nil {
		t.Fatalf("Publish to a topic never subscribed = %v, want nil", err)
	}
	c := &brokertest.Counter{Session: "s"}
	b.Subscribe(ctx, "t", c, nil)
	if left, err := b.Unsubscribe(ctx, "t", "s"); !left || err != nil {
		t.Fatalf("Unsubscribe = %v, %v; want true, nil", left, err)
	}
	if left, err := b.Unsubscribe(ctx, "t", "s"); left || err != nil {
		t.Fatalf("Unsubscribe again = %v, %v; want false, nil", left, err)
	}
	if err := b.Publish(ctx, "t", textMessage("x"), nil); err != nil || c.Got.Load() != 0 {
		t.Fatalf("Publish after the last left = %v, delivered %d; want nil, 0", err, c.Got.Load())
	}
	if members, err := b.Presence(ctx, "t"); len(members) != 0 || err != nil {
		t.Fatalf("Presence = %v, %v; want none", members, err)
	}
}

// contractPresenceEvents: joins and leaves are reported in order; a second
// Subscribe and an Unsubscribe of a non-member are not.
func contractPresenceEvents(t *testing.T, b broker.Broker) {
	ctx := context.Background()
	events := make(chan broker.PresenceEvent, 8)
	b.OnPresence(func(e broker.PresenceEvent) { events <- e })
	a, z := &brokertest.Counter{Session: "a"}, &brokertest.Counter{Session: "z"}
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

// contractFanoutEveryoneOnce: a publish to many subscribers reaches each
// exactly once but the excluded one, while others subscribe and leave.
func contractFanoutEveryoneOnce(t *testing.T, b broker.Broker) {
	const n, publishes = 3000, 5
	ctx := context.Background()
	subs := make([]*brokertest.Counter, n)
	for i := range subs {
		subs[i] = &brokertest.Counter{Session: fmt.Sprint(i)}
		if _, err := b.Subscribe(ctx, "t", subs[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { // churn beside the publishes
		for i := range 300 {
			c := &brokertest.Counter{Session: fmt.Sprint("churn", i)}
			b.Subscribe(ctx, "t", c, nil)
			b.Unsubscribe(ctx, "t", c.Session)
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
		if got := c.Got.Load(); got != want {
			t.Fatalf("subscriber %d got %d messages, want %d", i, got, want)
		}
	}
}

// contractContextEnded: every method given an ended context returns its
// error and changes nothing.
func contractContextEnded(t *testing.T, b broker.Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &brokertest.Counter{Session: "s"}
	if _, err := b.Subscribe(ctx, "t", c, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe = %v, want context.Canceled", err)
	}
	if err := b.Publish(ctx, "t", textMessage("x"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish = %v, want context.Canceled", err)
	}
	if members, err := b.Presence(context.Background(), "t"); len(members) != 0 || err != nil {
		t.Errorf("Presence = %v, %v; want none", members, err)
	}
}
