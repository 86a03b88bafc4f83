// Package brokertest checks cluster.Broker across nodes on any cluster.Bus:
// several Brokers, each on its own connection to one engine, as the nodes
// of a cluster. Package cluster runs it on MemoryBus; redisbus and natsbus
// run it against a real redis-server and nats-server:
//
//	func TestBroker(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) cluster.Bus {
//			return mybus.New(...)
//		})
//	}
//
// It also gives the pieces of its checks (Start, Fault, Recorder,
// PresenceView...) to tests of a Broker's own.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/wire"
)

// Timeout bounds every wait of a check: what a Broker promised and has not
// happened by then fails the check.
const Timeout = 30 * time.Second

// QuickOptions returns BrokerOptions with short heartbeats (20 ms, nodes
// gone after 500 ms unheard), so that checks of expiry and repair take
// little time, and a logger that discards. The checks wait for outcomes,
// never for durations.
func QuickOptions() *cluster.BrokerOptions {
	return &cluster.BrokerOptions{
		HeartbeatInterval: 20 * time.Millisecond,
		NodeTimeout:       500 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	}
}

// Node is one node of a test cluster: its Broker on its own connection to
// the engine, through a Fault the test may break.
type Node struct {
	Broker *cluster.Broker
	Conn   cluster.Bus
	Fault  *Fault

	killed sync.Once
}

// Kill closes the node's connection, as if its process died: its
// subscriptions vanish and it hears nothing more; its Broker goes on,
// talking to nobody, until the test ends.
func (n *Node) Kill() { n.killed.Do(func() { n.Conn.Close() }) }

// Start starts n nodes, each a Broker with opts on a connection from
// connect, with ids of their own ("n0-" and a random suffix...); they close,
// Broker then connection, when the test ends.
func Start(t testing.TB, connect func() cluster.Bus, n int, opts *cluster.BrokerOptions) []*Node {
	t.Helper()
	suffix := rand.Text()[:8]
	nodes := make([]*Node, n)
	for i := range nodes {
		nodes[i] = StartNode(t, connect, fmt.Sprintf("n%d-%s", i, suffix), opts)
	}
	return nodes
}

// StartNode starts one node with id; see Start.
func StartNode(t testing.TB, connect func() cluster.Bus, id string, opts *cluster.BrokerOptions) *Node {
	t.Helper()
	n := &Node{Conn: connect()}
	n.Fault = &Fault{Bus: n.Conn}
	b, err := cluster.NewBroker(n.Fault, id, opts)
	if err != nil {
		n.Kill()
		t.Fatalf("NewBroker(%s): %v", id, err)
	}
	n.Broker = b
	t.Cleanup(func() {
		b.Close()
		n.Kill()
	})
	return n
}

// Fault is a Bus that a test may pause, as if the engine were down for its
// node, or make lose the node's next presence events; it counts the node's
// subscriptions to topic subjects.
type Fault struct {
	cluster.Bus
	// Paused, while true, makes Publish and Request fail with an error
	// wrapping ErrUnavailable, and drops what arrives.
	Paused atomic.Bool
	// DropPresence is how many presence events to lose: Publish on
	// "tether.presence" returns nil and sends nothing.
	DropPresence atomic.Int64
	// TopicSubscriptions counts the subscriptions to topic subjects open
	// now.
	TopicSubscriptions atomic.Int64
	// Hold, if not nil, makes a subscription to a topic subject send a
	// value to Held, then wait for a value from Hold (or the end of its
	// context). Set both before the Subscribe.
	Hold, Held chan struct{}
}

// countedSubscription is a subscription to a topic subject, counted in
// Fault.TopicSubscriptions while open.
type countedSubscription struct {
	cluster.Subscription
	open *atomic.Int64
	once sync.Once
}

func (s *countedSubscription) Close() error {
	s.once.Do(func() { s.open.Add(-1) })
	return s.Subscription.Close()
}

// Publish implements cluster.Bus.
func (f *Fault) Publish(ctx context.Context, subject string, data []byte) error {
	if f.Paused.Load() {
		return fmt.Errorf("%w: paused by the test", cluster.ErrUnavailable)
	}
	if subject == "tether.presence" && f.DropPresence.Add(-1) >= 0 {
		return nil
	}
	return f.Bus.Publish(ctx, subject, data)
}

// Subscribe implements cluster.Bus.
func (f *Fault) Subscribe(ctx context.Context, subject string, fn func([]byte)) (cluster.Subscription, error) {
	topic := strings.HasPrefix(subject, "tether.topic.")
	if topic && f.Hold != nil {
		f.Held <- struct{}{}
		select {
		case <-f.Hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s, err := f.Bus.Subscribe(ctx, subject, func(data []byte) {
		if !f.Paused.Load() {
			fn(data)
		}
	})
	if err != nil || !topic {
		return s, err
	}
	f.TopicSubscriptions.Add(1)
	return &countedSubscription{Subscription: s, open: &f.TopicSubscriptions}, nil
}

// Request implements cluster.Bus.
func (f *Fault) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if f.Paused.Load() {
		return nil, fmt.Errorf("%w: paused by the test", cluster.ErrUnavailable)
	}
	return f.Bus.Request(ctx, subject, data)
}

// Serve implements cluster.Bus; a paused node's handler lets the request
// go unanswered.
func (f *Fault) Serve(ctx context.Context, subject string, handle func(context.Context, []byte) []byte) (cluster.Subscription, error) {
	return f.Bus.Serve(ctx, subject, func(ctx context.Context, data []byte) []byte {
		if f.Paused.Load() {
			<-ctx.Done()
			return nil
		}
		return handle(ctx, data)
	})
}

// WaitFor waits until cond holds, for Timeout at most.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Counter is a Subscriber that counts what it is given.
type Counter struct {
	Session string
	Got     atomic.Int64
}

// ID implements broker.Subscriber.
func (c *Counter) ID() string { return c.Session }

// Deliver implements broker.Subscriber.
func (c *Counter) Deliver(*broker.Delivery) { c.Got.Add(1) }

// Numbered returns a binary message saying it is publisher's n-th, as
// Recorder reads it.
func Numbered(publisher uint16, n uint32) wire.Message {
	data := binary.BigEndian.AppendUint16(nil, publisher)
	return wire.Message{Type: wire.Binary, Data: binary.BigEndian.AppendUint32(data, n)}
}

// Recorder is a Subscriber of Numbered messages that checks that each
// publisher's come once and in order, and counts them.
type Recorder struct {
	Session string

	mu       sync.Mutex
	count    int                      // guarded by mu
	last     map[uint16]uint32        // guarded by mu; by publisher
	fault    error                    // guarded by mu; the first message out of order
	delivery map[*broker.Delivery]int // guarded by mu; if not nil, the Deliveries seen
}

// NewRecorder returns a Recorder for session.
func NewRecorder(session string) *Recorder {
	return &Recorder{Session: session, last: make(map[uint16]uint32)}
}

// ID implements broker.Subscriber.
func (r *Recorder) ID() string { return r.Session }

// Deliver implements broker.Subscriber.
func (r *Recorder) Deliver(d *broker.Delivery) {
	p, n := binary.BigEndian.Uint16(d.Message.Data), binary.BigEndian.Uint32(d.Message.Data[2:])
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.last[p]; ok && n <= last && r.fault == nil {
		r.fault = fmt.Errorf("%s: message %d of publisher %d after %d", r.Session, n, p, last)
	}
	r.last[p] = n
	r.count++
	if r.delivery != nil {
		r.delivery[d]++
	}
}

// Counts returns how many messages r got, and the first out of order.
func (r *Recorder) Counts() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count, r.fault
}

// Await waits until r has n messages, failing t when one came out of
// order, when more than n came, or when none came for Timeout: a slow
// machine makes it wait longer, never fail.
func (r *Recorder) Await(t testing.TB, n int) {
	t.Helper()
	last, since := -1, time.Now()
	for {
		got, err := r.Counts()
		switch {
		case err != nil:
			t.Fatal(err)
		case got > n:
			t.Fatalf("%s got %d messages, want %d", r.Session, got, n)
		case got == n:
			return
		case got != last:
			last, since = got, time.Now()
		case time.Since(since) > Timeout:
			t.Fatalf("%s got %d messages, want %d: none came for %v", r.Session, got, n, Timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// PresenceOf returns b's presence of topic as sorted "session=info"
// strings.
func PresenceOf(b broker.Broker, topic string) []string {
	members, err := b.Presence(context.Background(), topic)
	if err != nil {
		return []string{err.Error()}
	}
	var s []string
	for _, m := range members {
		s = append(s, m.Session+"="+string(m.Info))
	}
	slices.Sort(s)
	return s
}

// PresenceView keeps the presence a broker's OnPresence events describe,
// and checks that they make sense: no join of a member present, no leave
// of one absent.
type PresenceView struct {
	mu      sync.Mutex
	members map[string]map[string]string // topic -> session -> info
	fault   error
}

// Watch returns the view of b's OnPresence events from now on.
func Watch(b broker.Broker) *PresenceView {
	v := &PresenceView{members: make(map[string]map[string]string)}
	b.OnPresence(v.add)
	return v
}

// WatchAll watches each node's Broker.
func WatchAll(nodes []*Node) []*PresenceView {
	views := make([]*PresenceView, len(nodes))
	for i, n := range nodes {
		views[i] = Watch(n.Broker)
	}
	return views
}

func (v *PresenceView) add(e broker.PresenceEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := v.members[e.Topic]
	if m == nil {
		m = make(map[string]string)
		v.members[e.Topic] = m
	}
	_, had := m[e.Member.Session]
	switch {
	case e.Change == broker.Joined && had, e.Change == broker.Left && !had:
		if v.fault == nil {
			v.fault = fmt.Errorf("event %v of %s in %s: had it %v", e.Change, e.Member.Session, e.Topic, had)
		}
	case e.Change == broker.Joined:
		m[e.Member.Session] = string(e.Member.Info)
	default:
		delete(m, e.Member.Session)
	}
}

// Of returns the view of topic as sorted "session=info" strings.
func (v *PresenceView) Of(topic string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var s []string
	for id, info := range v.members[topic] {
		s = append(s, id+"="+info)
	}
	slices.Sort(s)
	return s
}

// Err returns the first event that made no sense, if any.
func (v *PresenceView) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fault
}

// Converged waits until every node's Presence of each topic of want, and
// its view (unless nil), is want's: topic -> sorted "session=info".
func Converged(t testing.TB, nodes []*Node, views []*PresenceView, want map[string][]string) {
	t.Helper()
	for i, n := range nodes {
		for _, topic := range slices.Sorted(maps.Keys(want)) {
			w := strings.Join(want[topic], " ")
			WaitFor(t, fmt.Sprintf("node %d's presence of %s to be %q", i, topic, w), func() bool {
				return strings.Join(PresenceOf(n.Broker, topic), " ") == w && (views[i] == nil || strings.Join(views[i].Of(topic), " ") == w)
			})
		}
		if views[i] != nil {
			if err := views[i].Err(); err != nil {
				t.Errorf("node %d: %v", i, err)
			}
		}
	}
}

// SubscribeMany subscribes sessions s<i>, i in [0, n), on node i%len(nodes)
// to topic p<i%5> with info user<i>, then unsubscribes those with
// i%4 == 0, all nodes at once. It returns the presence that makes: topic
// -> sorted "session=info".
func SubscribeMany(t testing.TB, nodes []*Node, n int) map[string][]string {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for k, node := range nodes {
		wg.Go(func() {
			for i := k; i < n; i += len(nodes) {
				topic, id := fmt.Sprint("p", i%5), fmt.Sprint("s", i)
				if _, err := node.Broker.Subscribe(ctx, topic, &Counter{Session: id}, []byte(fmt.Sprint("user", i))); err != nil {
					t.Error(err)
				}
			}
			for i := k; i < n; i += len(nodes) {
				if i%4 == 0 {
					node.Broker.Unsubscribe(ctx, fmt.Sprint("p", i%5), fmt.Sprint("s", i))
				}
			}
		})
	}
	wg.Wait()
	want := make(map[string][]string)
	for i := range n {
		topic := fmt.Sprint("p", i%5)
		if i%4 != 0 {
			want[topic] = append(want[topic], fmt.Sprintf("s%d=user%d", i, i))
		} else if want[topic] == nil {
			want[topic] = []string{}
		}
	}
	for _, members := range want {
		slices.Sort(members)
	}
	return want
}

// Without returns want without the members of SubscribeMany's sessions on
// the nodes for which gone(node index) holds, of nodes in all.
func Without(want map[string][]string, nodes int, gone func(node int) bool) map[string][]string {
	part := make(map[string][]string)
	for topic, members := range want {
		part[topic] = slices.DeleteFunc(slices.Clone(members), func(m string) bool {
			var i int
			fmt.Sscanf(m, "s%d=", &i)
			return gone(i % nodes)
		})
	}
	return part
}
