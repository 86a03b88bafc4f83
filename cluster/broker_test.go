package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/brokertest"
	"github.com/tetherkit/tether/wire"
)

// TestBrokerOnMemoryBus runs the checks of package brokertest on
// MemoryBus: three nodes, each on a connection of its own.
func TestBrokerOnMemoryBus(t *testing.T) {
	bus := cluster.NewMemoryBus()
	brokertest.Run(t, func(*testing.T) cluster.Bus { return bus.Connect() })
}

// TestBrokerLateNodeSnapshotPages: a node that joins later gets the others'
// presence in snapshots paged to fit a small MaxPayload.
func TestBrokerLateNodeSnapshotPages(t *testing.T) {
	bus := cluster.NewMemoryBus()
	bus.MaxPayload = 1024
	nodes := brokertest.Start(t, bus.Connect, 2, brokertest.QuickOptions())
	views := brokertest.WatchAll(nodes)
	want := brokertest.SubscribeMany(t, nodes, 400)
	brokertest.Converged(t, nodes, views, want)
	late := brokertest.StartNode(t, bus.Connect, "late", brokertest.QuickOptions())
	// The late node's first snapshots may come before OnPresence could be
	// set: only its Presence is checked.
	brokertest.Converged(t, append(nodes, late), append(views, nil), want)
	if s := late.Broker.Stats(); s.Snapshots < 2 {
		t.Errorf("the late node fetched %d snapshots, want one of each other node", s.Snapshots)
	}
}

// TestBrokerLimits: what the bus cannot carry is refused with ErrTooBig
// before anyone receives it; invalid node and session ids are refused.
func TestBrokerLimits(t *testing.T) {
	ctx := context.Background()
	bus := cluster.NewMemoryBus()
	bus.MaxPayload = 1000
	nodes := brokertest.Start(t, bus.Connect, 1, brokertest.QuickOptions())
	b := nodes[0].Broker
	c := &brokertest.Counter{Session: "s"}
	b.Subscribe(ctx, "t", c, nil)
	big := wire.Message{Type: wire.Binary, Data: make([]byte, 1000)}
	if err := b.Publish(ctx, "t", big, nil); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Publish of a message over MaxPayload = %v, want ErrTooBig", err)
	}
	if err := b.Publish(ctx, "t", wire.Message{Type: wire.Binary, Data: make([]byte, 500)}, nil); err != nil {
		t.Errorf("Publish of a message within MaxPayload = %v", err)
	}
	if c.Got.Load() != 1 {
		t.Errorf("the subscriber got %d messages, want 1", c.Got.Load())
	}
	if _, err := b.Subscribe(ctx, "t", &brokertest.Counter{Session: "x"}, make([]byte, 1000)); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Subscribe with info over MaxPayload = %v, want ErrTooBig", err)
	}
	if _, err := b.Subscribe(ctx, "t", &brokertest.Counter{Session: strings.Repeat("x", 256)}, nil); !errors.Is(err, cluster.ErrInvalidSessionID) {
		t.Errorf("Subscribe with a long session id = %v, want ErrInvalidSessionID", err)
	}
	if err := b.Publish(ctx, "t", wire.Message{Type: wire.Binary, Data: make([]byte, 70_000)}, nil); !errors.Is(err, wire.ErrMessageTooBig) {
		t.Errorf("Publish over MaxMessageBytes = %v, want wire.ErrMessageTooBig", err)
	}
	if members := brokertest.PresenceOf(b, "t"); !slices.Equal(members, []string{"s="}) {
		t.Errorf("Presence = %v, want s alone", members)
	}
	conn := bus.Connect()
	defer conn.Close()
	for _, id := range []string{"", "a.b", "node 1", strings.Repeat("x", cluster.MaxNodeIDBytes+1)} {
		if _, err := cluster.NewBroker(conn, id, nil); !errors.Is(err, cluster.ErrInvalidNodeID) {
			t.Errorf("NewBroker(%q) = %v, want ErrInvalidNodeID", id, err)
		}
	}
	if b, err := cluster.NewBroker(nodes[0].Conn, nodes[0].Broker.ID(), nil); !errors.Is(err, cluster.ErrServed) {
		if err == nil {
			b.Close()
		}
		t.Errorf("NewBroker of a node id in use = %v, want ErrServed", err)
	}
}

// TestBrokerNodeMaxMessage: a message as large as a Node allows goes
// through the Node's Broker to the other nodes, with the longest topic and
// excluded session.
func TestBrokerNodeMaxMessage(t *testing.T) {
	ctx := context.Background()
	bus := cluster.NewMemoryBus()
	bus.MaxPayload = 8 << 10
	var nodes []*cluster.Node
	for range 2 {
		conn := bus.Connect()
		n, err := cluster.NewNode(conn, &cluster.NodeOptions{Logger: brokertest.QuickOptions().Logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			n.Close()
			conn.Close()
		})
		nodes = append(nodes, n)
	}
	topic := strings.Repeat("t", broker.MaxTopicBytes)
	r := brokertest.NewRecorder("s")
	if _, err := nodes[1].Broker().Subscribe(ctx, topic, r, nil); err != nil {
		t.Fatal(err)
	}
	m := wire.Message{Type: wire.Binary, Data: make([]byte, nodes[0].MaxMessageBytes())}
	opts := &broker.PublishOptions{Exclude: strings.Repeat("x", 255)}
	if err := nodes[0].Broker().Publish(ctx, topic, m, opts); err != nil {
		t.Fatalf("Publish of %d bytes (Node.MaxMessageBytes) = %v", len(m.Data), err)
	}
	r.Await(t, 1)
}

// orderLog is a Subscriber that appends its session id to a shared log on
// every delivery.
type orderLog struct {
	id  string
	mu  *sync.Mutex
	log *[]string
}

func (o *orderLog) ID() string { return o.id }
func (o *orderLog) Deliver(*broker.Delivery) {
	o.mu.Lock()
	*o.log = append(*o.log, o.id)
	o.mu.Unlock()
}

// TestBrokerDeliversInSubscriptionOrder: a node delivers a publish to its
// own subscribers in the order they subscribed (fewer than one goroutine
// of broker.Fanout takes), the ones that left leaving no gap and one that
// subscribed again coming last.
func TestBrokerDeliversInSubscriptionOrder(t *testing.T) {
	ctx := context.Background()
	b := brokertest.Start(t, cluster.NewMemoryBus().Connect, 1, brokertest.QuickOptions())[0].Broker
	var mu sync.Mutex
	var log, want []string
	for i := range 60 {
		if _, err := b.Subscribe(ctx, "t", &orderLog{id: fmt.Sprint("s", i), mu: &mu, log: &log}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		if i%4 != 0 {
			if _, err := b.Unsubscribe(ctx, "t", fmt.Sprint("s", i)); err != nil {
				t.Fatal(err)
			}
		} else if i != 0 {
			want = append(want, fmt.Sprint("s", i))
		}
	}
	b.Unsubscribe(ctx, "t", "s0")
	b.Subscribe(ctx, "t", &orderLog{id: "s0", mu: &mu, log: &log}, nil)
	want = append(want, "s0")
	if err := b.Publish(ctx, "t", wire.Message{Type: wire.Text, Data: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(log, " "); got != strings.Join(want, " ") {
		t.Fatalf("delivered to %s, want %s", got, strings.Join(want, " "))
	}
}
