package cluster_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// testNode is one node of a test cluster: its Broker on its own connection
// to the MemoryBus, through a faultyBus the test may break.
type testNode struct {
	broker *cluster.Broker
	conn   cluster.Bus
	fault  *faultyBus
}

// quickOptions are BrokerOptions with short heartbeats, so that tests of
// expiry and repair take little time; the tests wait for outcomes, never
// for durations.
func quickOptions() *cluster.BrokerOptions {
	return &cluster.BrokerOptions{
		HeartbeatInterval: 20 * time.Millisecond,
		NodeTimeout:       500 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// startNodes starts n nodes named node0, node1... on bus; they close when
// the test ends.
func startNodes(t testing.TB, bus *cluster.MemoryBus, n int, opts *cluster.BrokerOptions) []*testNode {
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = startNode(t, bus, fmt.Sprintf("node%d", i), opts)
	}
	return nodes
}

func startNode(t testing.TB, bus *cluster.MemoryBus, id string, opts *cluster.BrokerOptions) *testNode {
	conn := bus.Connect()
	fault := &faultyBus{Bus: conn}
	b, err := cluster.NewBroker(fault, id, opts)
	if err != nil {
		conn.Close()
		t.Fatalf("NewBroker(%s): %v", id, err)
	}
	t.Cleanup(func() {
		b.Close()
		conn.Close()
	})
	return &testNode{broker: b, conn: conn, fault: fault}
}

// faultyBus is a Bus that a test may pause, as if the engine were down for
// its node, or make lose the node's next presence events.
type faultyBus struct {
	cluster.Bus
	paused       atomic.Bool
	dropPresence atomic.Int64 // presence events still to lose
	// topics counts the subscriptions to topic subjects open now.
	topics atomic.Int64
	// hold, if not nil, makes subscribing a topic subject wait for a
	// value from it (or the end of its context), after a value to held.
	hold, held chan struct{}
}

// countedSubscription is a subscription to a topic subject, counted in
// faultyBus.topics while open.
type countedSubscription struct {
	cluster.Subscription
	open *atomic.Int64
	once sync.Once
}

func (s *countedSubscription) Close() error {
	s.once.Do(func() { s.open.Add(-1) })
	return s.Subscription.Close()
}

func (f *faultyBus) Publish(ctx context.Context, subject string, data []byte) error {
	if f.paused.Load() {
		return fmt.Errorf("%w: paused by the test", cluster.ErrUnavailable)
	}
	if subject == "tether.presence" && f.dropPresence.Add(-1) >= 0 {
		return nil
	}
	return f.Bus.Publish(ctx, subject, data)
}

func (f *faultyBus) Subscribe(ctx context.Context, subject string, fn func([]byte)) (cluster.Subscription, error) {
	topic := strings.HasPrefix(subject, "tether.topic.")
	if topic && f.hold != nil {
		f.held <- struct{}{}
		select {
		case <-f.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s, err := f.Bus.Subscribe(ctx, subject, func(data []byte) {
		if !f.paused.Load() {
			fn(data)
		}
	})
	if err != nil || !topic {
		return s, err
	}
	f.topics.Add(1)
	return &countedSubscription{Subscription: s, open: &f.topics}, nil
}

func (f *faultyBus) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if f.paused.Load() {
		return nil, fmt.Errorf("%w: paused by the test", cluster.ErrUnavailable)
	}
	return f.Bus.Request(ctx, subject, data)
}

func (f *faultyBus) Serve(ctx context.Context, subject string, handle func(context.Context, []byte) []byte) (cluster.Subscription, error) {
	return f.Bus.Serve(ctx, subject, func(ctx context.Context, data []byte) []byte {
		if f.paused.Load() {
			<-ctx.Done() // the request never arrived
			return nil
		}
		return handle(ctx, data)
	})
}

// waitFor waits until cond holds, for 30 seconds at most.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// numbered returns a message saying it is publisher's n-th.
func numbered(publisher uint16, n uint32) wire.Message {
	data := binary.BigEndian.AppendUint16(nil, publisher)
	return wire.Message{Type: wire.Binary, Data: binary.BigEndian.AppendUint32(data, n)}
}

// recorder is a Subscriber that checks that each publisher's messages come
// once and in order (numbered), and counts them.
type recorder struct {
	id string

	mu       sync.Mutex
	count    int                      // guarded by mu
	last     map[uint16]uint32        // guarded by mu; by publisher
	fault    error                    // guarded by mu; the first message out of order
	delivery map[*broker.Delivery]int // guarded by mu; if not nil, the Deliveries seen
}

func newRecorder(id string) *recorder { return &recorder{id: id, last: make(map[uint16]uint32)} }

func (r *recorder) ID() string { return r.id }

func (r *recorder) Deliver(d *broker.Delivery) {
	p, n := binary.BigEndian.Uint16(d.Message.Data), binary.BigEndian.Uint32(d.Message.Data[2:])
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.last[p]; ok && n <= last && r.fault == nil {
		r.fault = fmt.Errorf("%s: message %d of publisher %d after %d", r.id, n, p, last)
	}
	r.last[p] = n
	r.count++
	if r.delivery != nil {
		r.delivery[d]++
	}
}

func (r *recorder) counts() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count, r.fault
}

// TestBrokerExactlyOnceInOrder: 6 publishers on 3 nodes publish 10,000
// messages over 20 topics to 3,000 subscribers spread over the nodes: each
// subscriber receives every message of its topic once, each publisher's in
// order.
func TestBrokerExactlyOnceInOrder(t *testing.T) {
	const (
		perNode    = 1000
		topics     = 20
		publishers = 6
		publishes  = 10_000
	)
	ctx := context.Background()
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, quickOptions())
	var subs []*recorder
	for i, n := range nodes {
		for j := range perNode {
			r := newRecorder(fmt.Sprintf("n%d-s%d", i, j))
			if _, err := n.broker.Subscribe(ctx, fmt.Sprint("topic-", j%topics), r, nil); err != nil {
				t.Fatal(err)
			}
			subs = append(subs, r)
		}
	}
	topicOf := func(p, k int) int { return (k*7 + p) % topics }
	var want [topics]int
	for p := range publishers {
		for k := p; k < publishes; k += publishers {
			want[topicOf(p, k)]++
		}
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			b := nodes[p%len(nodes)].broker
			for k := p; k < publishes; k += publishers {
				if err := b.Publish(ctx, fmt.Sprint("topic-", topicOf(p, k)), numbered(uint16(p), uint32(k+1)), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, r := range subs {
		j := i % perNode
		waitFor(t, r.id+"'s messages", func() bool {
			n, err := r.counts()
			if err != nil {
				t.Fatal(err)
			}
			if n > want[j%topics] {
				t.Fatalf("%s got %d messages, want %d", r.id, n, want[j%topics])
			}
			return n == want[j%topics]
		})
	}
	// What is still on its way comes before a last message of each
	// publisher, which the recorders check for order.
	for p := range publishers {
		for k := range topics {
			nodes[p%len(nodes)].broker.Publish(ctx, fmt.Sprint("topic-", k), numbered(uint16(p), publishes+1), nil)
		}
	}
	for i, r := range subs {
		j := i % perNode
		waitFor(t, r.id+"'s last messages", func() bool {
			n, err := r.counts()
			if err != nil {
				t.Fatal(err)
			}
			return n == want[j%topics]+publishers
		})
	}
	t.Logf("%d subscribers on 3 nodes got exactly the %d messages of their topic, in order per publisher (%d deliveries)",
		len(subs), publishes, len(subs)*publishes/topics)
}

// TestBrokerExcludeAcrossNodes: the excluded session receives nothing,
// whichever node it is on; every other receives the message once, and the
// subscribers of one node share one Delivery.
func TestBrokerExcludeAcrossNodes(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, quickOptions())
	var subs []*recorder
	for i, n := range nodes {
		for j := range 3 {
			r := newRecorder(fmt.Sprintf("n%d-s%d", i, j))
			r.delivery = make(map[*broker.Delivery]int)
			n.broker.Subscribe(ctx, "room", r, nil)
			subs = append(subs, r)
		}
	}
	for k, excluded := range subs { // node k%3 publishes its k-th
		publisher := nodes[k%3].broker
		if err := publisher.Publish(ctx, "room", numbered(uint16(k%3), uint32(k+1)), &broker.PublishOptions{Exclude: excluded.id}); err != nil {
			t.Fatal(err)
		}
	}
	// A last message to all: once it is in, so is everything before it.
	nodes[0].broker.Publish(ctx, "room", numbered(0, uint32(len(subs)+1)), nil)
	for i, r := range subs {
		waitFor(t, r.id+"'s messages", func() bool { n, _ := r.counts(); return n == len(subs) })
		r.mu.Lock()
		if r.fault != nil {
			t.Error(r.fault)
		}
		for d := range r.delivery {
			if binary.BigEndian.Uint32(d.Message.Data[2:]) == uint32(i+1) {
				t.Errorf("%s got the message that excluded it", r.id)
			}
		}
		r.mu.Unlock()
	}
	// One Delivery per publish and node: its frames are built once there.
	for i := range nodes {
		seen := make(map[*broker.Delivery]int)
		for _, r := range subs[i*3 : i*3+3] {
			r.mu.Lock()
			for d, n := range r.delivery {
				seen[d] += n
			}
			r.mu.Unlock()
		}
		if len(seen) != len(subs)+1 {
			t.Errorf("node %d: %d Deliveries for %d publishes", i, len(seen), len(subs)+1)
		}
	}
}

// TestBrokerSubscribeActiveOnReturn: once Subscribe has returned on one
// node, a publish on another reaches the new subscriber.
func TestBrokerSubscribeActiveOnReturn(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, quickOptions())
	for i := range 200 {
		topic := fmt.Sprint("fresh-", i)
		r := newRecorder("s")
		if _, err := nodes[1+i%2].broker.Subscribe(ctx, topic, r, nil); err != nil {
			t.Fatal(err)
		}
		if err := nodes[0].broker.Publish(ctx, topic, numbered(0, 1), nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the first publish after Subscribe", func() bool { n, _ := r.counts(); return n == 1 })
		if _, err := nodes[1+i%2].broker.Unsubscribe(ctx, topic, "s"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrokerChurn: sessions subscribe and unsubscribe on every node while
// publishers publish: the steady subscribers get every message once and in
// order; those coming and going get a part of them, once and in order.
func TestBrokerChurn(t *testing.T) {
	const publishes = 2000
	ctx := context.Background()
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, quickOptions())
	var steady []*recorder
	for i, n := range nodes {
		r := newRecorder(fmt.Sprint("steady", i))
		n.broker.Subscribe(ctx, "t", r, nil)
		steady = append(steady, r)
	}
	done := make(chan struct{})
	var churn sync.WaitGroup
	var churners []*recorder
	var churnersMu sync.Mutex
	for i, n := range nodes {
		churn.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				r := newRecorder(fmt.Sprintf("churn%d-%d", i, k))
				churnersMu.Lock()
				churners = append(churners, r)
				churnersMu.Unlock()
				topic := []string{"t", "u"}[k%2] // "u" has nobody else: its bus subscription comes and goes
				if _, err := n.broker.Subscribe(ctx, topic, r, nil); err != nil {
					t.Error(err)
					return
				}
				if _, err := n.broker.Unsubscribe(ctx, topic, r.id); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var pub sync.WaitGroup
	for p, n := range nodes {
		pub.Go(func() {
			for k := range publishes {
				for _, topic := range []string{"t", "u"} {
					if err := n.broker.Publish(ctx, topic, numbered(uint16(p), uint32(k+1)), nil); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	pub.Wait()
	close(done)
	churn.Wait()
	for _, r := range steady {
		waitFor(t, r.id+"'s messages", func() bool {
			n, err := r.counts()
			if err != nil || n > 3*publishes {
				t.Fatalf("%s: %d messages, %v; want %d in order", r.id, n, err, 3*publishes)
			}
			return n == 3*publishes
		})
	}
	for _, r := range churners {
		if n, err := r.counts(); err != nil || n > 3*publishes {
			t.Fatalf("%s: %d messages, %v", r.id, n, err)
		}
	}
	t.Logf("%d subscriptions came and went during %d publishes", len(churners), 6*publishes)
}

// presenceOf returns b's presence of topic as "session=info" strings,
// sorted.
func presenceOf(b broker.Broker, topic string) []string {
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

// presenceView keeps the presence a broker's OnPresence events describe,
// and checks that they make sense: no join of a member present, no leave
// of one absent.
type presenceView struct {
	mu      sync.Mutex
	members map[string]map[string]string // topic -> session -> info
	fault   error
	events  int
}

func watchPresence(b broker.Broker) *presenceView {
	v := &presenceView{members: make(map[string]map[string]string)}
	b.OnPresence(func(e broker.PresenceEvent) {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.events++
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
	})
	return v
}

func (v *presenceView) of(topic string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var s []string
	for id, info := range v.members[topic] {
		s = append(s, id+"="+info)
	}
	slices.Sort(s)
	return s
}

// converged waits until every node's Presence and OnPresence view (unless
// nil) of each topic is want's.
func converged(t *testing.T, nodes []*testNode, views []*presenceView, want map[string][]string) {
	t.Helper()
	for i, n := range nodes {
		for _, topic := range slices.Sorted(maps.Keys(want)) {
			w := strings.Join(want[topic], " ")
			waitFor(t, fmt.Sprintf("node %d's presence of %s to be %q", i, topic, w), func() bool {
				return strings.Join(presenceOf(n.broker, topic), " ") == w && (views[i] == nil || strings.Join(views[i].of(topic), " ") == w)
			})
		}
		if views[i] == nil {
			continue
		}
		views[i].mu.Lock()
		if views[i].fault != nil {
			t.Errorf("node %d: %v", i, views[i].fault)
		}
		views[i].mu.Unlock()
	}
}

// subscribeMany subscribes sessions s<i>, i in [0, n), on node i%3 to
// topic p<i%5> with info user<i>, then unsubscribes those with i%4 == 0,
// all nodes at once; it returns the presence that makes: topic -> sorted
// "session=info".
func subscribeMany(t *testing.T, nodes []*testNode, n int) map[string][]string {
	ctx := context.Background()
	var wg sync.WaitGroup
	for k, node := range nodes {
		wg.Go(func() {
			for i := k; i < n; i += len(nodes) {
				topic, id := fmt.Sprint("p", i%5), fmt.Sprint("s", i)
				if _, err := node.broker.Subscribe(ctx, topic, counterFor(id), []byte(fmt.Sprint("user", i))); err != nil {
					t.Error(err)
				}
			}
			for i := k; i < n; i += len(nodes) {
				if i%4 == 0 {
					node.broker.Unsubscribe(ctx, fmt.Sprint("p", i%5), fmt.Sprint("s", i))
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

func counterFor(id string) *counter { return &counter{id: id} }

func watchAll(nodes []*testNode) []*presenceView {
	views := make([]*presenceView, len(nodes))
	for i, n := range nodes {
		views[i] = watchPresence(n.broker)
	}
	return views
}

// TestBrokerPresenceConverges: joins and leaves on every node at once;
// every node's Presence and OnPresence agree on who is where.
func TestBrokerPresenceConverges(t *testing.T) {
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, quickOptions())
	views := watchAll(nodes)
	want := subscribeMany(t, nodes, 600)
	converged(t, nodes, views, want)
	for i, n := range nodes {
		if got := n.broker.Nodes(); len(got) != 2 {
			t.Errorf("node %d hears from %v, want the 2 others", i, got)
		}
	}
}

// TestBrokerLateNodeSnapshotPages: a node that joins later gets the others'
// presence in snapshots paged to fit a small MaxPayload.
func TestBrokerLateNodeSnapshotPages(t *testing.T) {
	bus := cluster.NewMemoryBus()
	bus.MaxPayload = 1024
	nodes := startNodes(t, bus, 2, quickOptions())
	views := watchAll(nodes)
	want := subscribeMany(t, nodes, 400)
	converged(t, nodes, views, want)
	late := startNode(t, bus, "late", quickOptions())
	// The late node's first snapshots may come before OnPresence could be
	// set: only its Presence is checked.
	converged(t, append(nodes, late), append(views, nil), want)
	if s := late.broker.Stats(); s.Snapshots < 2 {
		t.Errorf("the late node fetched %d snapshots, want one of each other node", s.Snapshots)
	}
}

// TestBrokerNodeDies: a node's connection closes (the process died): its
// members leave every other node's presence, with Left events, once
// NodeTimeout has passed.
func TestBrokerNodeDies(t *testing.T) {
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, quickOptions())
	views := watchAll(nodes)
	want := subscribeMany(t, nodes, 90)
	converged(t, nodes, views, want)
	nodes[2].conn.Close()
	for topic, members := range want {
		want[topic] = slices.DeleteFunc(slices.Clone(members), func(m string) bool {
			var i int
			fmt.Sscanf(m, "s%d=", &i)
			return i%3 == 2
		})
	}
	converged(t, nodes[:2], views[:2], want)
	for i, n := range nodes[:2] {
		if s := n.broker.Stats(); s.NodesGone != 1 || slices.Contains(n.broker.Nodes(), "node2") {
			t.Errorf("node %d: %d nodes gone, hears from %v; want node2 gone", i, s.NodesGone, n.broker.Nodes())
		}
	}
}

// TestBrokerGoodbye: a node that closes its Broker leaves at once: its
// members leave the others' presence without waiting for NodeTimeout.
func TestBrokerGoodbye(t *testing.T) {
	opts := quickOptions()
	opts.NodeTimeout = time.Hour
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, opts)
	views := watchAll(nodes)
	want := subscribeMany(t, nodes, 30)
	converged(t, nodes, views, want)
	nodes[1].broker.Close()
	for topic, members := range want {
		want[topic] = slices.DeleteFunc(slices.Clone(members), func(m string) bool {
			var i int
			fmt.Sscanf(m, "s%d=", &i)
			return i%3 == 1
		})
	}
	converged(t, []*testNode{nodes[0], nodes[2]}, []*presenceView{views[0], views[2]}, want)
	if err := nodes[1].broker.Publish(context.Background(), "p1", numbered(0, 1), nil); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

// TestBrokerLostEvents: presence events lost on the bus are found missing
// by the next heartbeats, and a snapshot repairs presence.
func TestBrokerLostEvents(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, quickOptions())
	views := watchAll(nodes)
	want := subscribeMany(t, nodes, 30)
	converged(t, nodes, views, want)
	before := nodes[1].broker.Stats().Snapshots
	// The last events of node0: nothing follows to show the gap but the
	// heartbeats.
	nodes[0].fault.dropPresence.Store(2)
	nodes[0].broker.Subscribe(ctx, "p0", counterFor("lost-join"), []byte("x"))
	nodes[0].broker.Unsubscribe(ctx, "p3", "s3")
	want["p0"] = slices.Sorted(slices.Values(append(slices.Clone(want["p0"]), "lost-join=x")))
	want["p3"] = slices.DeleteFunc(slices.Clone(want["p3"]), func(m string) bool { return m == "s3=user3" })
	converged(t, nodes, views, want)
	if after := nodes[1].broker.Stats().Snapshots; after <= before {
		t.Errorf("node1 fetched %d snapshots, then %d: want one more", before, after)
	}
	// One lost in the middle: the next event shows the gap.
	nodes[2].fault.dropPresence.Store(1)
	nodes[2].broker.Subscribe(ctx, "p4", counterFor("lost-middle"), nil)
	nodes[2].broker.Subscribe(ctx, "p4", counterFor("after-gap"), nil)
	want["p4"] = slices.Sorted(slices.Values(append(slices.Clone(want["p4"]), "lost-middle=", "after-gap=")))
	converged(t, nodes, views, want)
}

// TestBrokerBusOutage: a node cut off from the bus sees the others'
// members leave, and they see its members leave; when the bus comes back,
// everyone's members join again everywhere.
func TestBrokerBusOutage(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, cluster.NewMemoryBus(), 3, quickOptions())
	views := watchAll(nodes)
	want := subscribeMany(t, nodes, 30)
	converged(t, nodes, views, want)
	nodes[2].fault.paused.Store(true)
	mine := func(k int) map[string][]string { // the members of the nodes in k's part of the cut
		part := make(map[string][]string)
		for topic, members := range want {
			part[topic] = slices.DeleteFunc(slices.Clone(members), func(m string) bool {
				var i int
				fmt.Sscanf(m, "s%d=", &i)
				return (i%3 == 2) != (k == 2)
			})
		}
		return part
	}
	converged(t, nodes[:2], views[:2], mine(0))
	converged(t, nodes[2:], views[2:], mine(2))
	// Publishing on the cut-off node: its own subscribers have the
	// message, and the error says the others do not.
	r := newRecorder("cut-off")
	nodes[2].broker.Subscribe(ctx, "p2", r, nil)
	if err := nodes[2].broker.Publish(ctx, "p2", numbered(0, 1), nil); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Publish while the bus is down = %v, want ErrUnavailable", err)
	}
	if n, _ := r.counts(); n != 1 {
		t.Errorf("the publishing node's subscriber got %d messages, want 1", n)
	}
	nodes[2].broker.Unsubscribe(ctx, "p2", "cut-off")
	nodes[2].fault.paused.Store(false)
	converged(t, nodes, views, want)
}

// TestBrokerBadInput: malformed messages on every subject the brokers
// listen to are dropped and counted; nothing else changes.
func TestBrokerBadInput(t *testing.T) {
	ctx := context.Background()
	bus := cluster.NewMemoryBus()
	nodes := startNodes(t, bus, 2, quickOptions())
	views := watchAll(nodes)
	r := newRecorder("s")
	nodes[1].broker.Subscribe(ctx, "room:go", r, []byte("info"))
	want := map[string][]string{"room:go": {"s=info"}}
	converged(t, nodes, views, want)
	raw := bus.Connect()
	defer raw.Close()
	topicSubject := "tether.topic.cm9vbTpnbw" // base64url("room:go")
	pub := func(origin, exclude, topic string, typ byte, data string) string {
		b := []byte{'p'}
		for _, s := range []string{origin, exclude, topic} {
			b = append(b, byte(len(s)))
			b = append(b, s...)
		}
		return string(append(append(b, typ), data...))
	}
	garbage := []struct{ subject, data string }{
		{topicSubject, ""},
		{topicSubject, "\x00garbage"},
		{topicSubject, pub("x", "", "room:go", byte(wire.Text), "\xff\xfe")},                   // invalid UTF-8 text
		{topicSubject, pub("x", "", "room:go", 9, "x")},                                        // unknown message type
		{topicSubject, pub("x", "", "room:other", byte(wire.Text), "x")},                       // another topic
		{topicSubject, pub("x", "", "room go", byte(wire.Text), "x")},                          // invalid topic
		{topicSubject, pub("bad.id", "", "room:go", byte(wire.Text), "x")},                     // invalid node id
		{topicSubject, pub("x", "", "room:go", byte(wire.Binary), strings.Repeat("x", 1<<17))}, // over MaxMessageBytes
		{topicSubject, pub("x", "", "room:go", byte(wire.Text), "x")[:5]},                      // cut short
		{"tether.presence", ""},
		{"tether.presence", "e\x05node9\x00j\x07room:go\x01s"},                        // event number 0
		{"tether.presence", "e\x05node9\x01x\x07room:go\x01s"},                        // unknown change
		{"tether.presence", "e\x05node9\x01l\x07room:go\x01sEXTRA"},                   // bytes after a leave
		{"tether.presence", "e\x05node9\x01j\x07room:go\x00"},                         // empty session
		{"tether.presence", "e\x05node9\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"}, // bad number
		{"tether.nodes", "h"},
		{"tether.nodes", "h\x05node9"},
		{"tether.nodes", "g\x05node9extra"},
		{"tether.nodes", "z\x05node9\x01"},
	}
	for _, g := range garbage {
		if err := raw.Publish(ctx, g.subject, []byte(g.data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, ask := range []string{"", "q", "q\x05room", "a\x00\x00", "q\x00\x00extra"} {
		reply, err := raw.Request(ctx, "tether.presence.node0", []byte(ask))
		if err != nil || len(reply) != 0 {
			t.Errorf("snapshot request %q = %q, %v; want an empty reply", ask, reply, err)
		}
	}
	// A well-formed publish after the garbage is delivered: the garbage
	// came before it and disturbed nothing.
	if err := raw.Publish(ctx, topicSubject, []byte(pub("x", "", "room:go", byte(wire.Binary), "\x00\x07\x00\x00\x00\x01"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the good message", func() bool { n, _ := r.counts(); return n == 1 })
	waitFor(t, "every malformed message counted", func() bool {
		return nodes[1].broker.Stats().Malformed == uint64(len(garbage)) &&
			nodes[0].broker.Stats().Malformed == uint64(len(garbage)-9+5)
	})
	converged(t, nodes, views, want)
	if got := nodes[0].broker.Nodes(); !slices.Equal(got, []string{"node1"}) {
		t.Errorf("node0 hears from %v, want node1 only", got)
	}
}

// TestBrokerLimits: what the bus cannot carry is refused with ErrTooBig
// before anyone receives it; invalid node and session ids are refused.
func TestBrokerLimits(t *testing.T) {
	ctx := context.Background()
	bus := cluster.NewMemoryBus()
	bus.MaxPayload = 1000
	nodes := startNodes(t, bus, 1, quickOptions())
	b := nodes[0].broker
	c := &counter{id: "s"}
	b.Subscribe(ctx, "t", c, nil)
	big := wire.Message{Type: wire.Binary, Data: make([]byte, 1000)}
	if err := b.Publish(ctx, "t", big, nil); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Publish of a message over MaxPayload = %v, want ErrTooBig", err)
	}
	if err := b.Publish(ctx, "t", wire.Message{Type: wire.Binary, Data: make([]byte, 500)}, nil); err != nil {
		t.Errorf("Publish of a message within MaxPayload = %v", err)
	}
	if c.got.Load() != 1 {
		t.Errorf("the subscriber got %d messages, want 1", c.got.Load())
	}
	if _, err := b.Subscribe(ctx, "t", &counter{id: "x"}, make([]byte, 1000)); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Subscribe with info over MaxPayload = %v, want ErrTooBig", err)
	}
	if _, err := b.Subscribe(ctx, "t", &counter{id: strings.Repeat("x", 256)}, nil); !errors.Is(err, cluster.ErrInvalidSessionID) {
		t.Errorf("Subscribe with a long session id = %v, want ErrInvalidSessionID", err)
	}
	if err := b.Publish(ctx, "t", wire.Message{Type: wire.Binary, Data: make([]byte, 70_000)}, nil); !errors.Is(err, wire.ErrMessageTooBig) {
		t.Errorf("Publish over MaxMessageBytes = %v, want wire.ErrMessageTooBig", err)
	}
	if members := presenceOf(b, "t"); !slices.Equal(members, []string{"s="}) {
		t.Errorf("Presence = %v, want s alone", members)
	}
	conn := bus.Connect()
	defer conn.Close()
	for _, id := range []string{"", "a.b", "node 1", strings.Repeat("x", cluster.MaxNodeIDBytes+1)} {
		if _, err := cluster.NewBroker(conn, id, nil); !errors.Is(err, cluster.ErrInvalidNodeID) {
			t.Errorf("NewBroker(%q) = %v, want ErrInvalidNodeID", id, err)
		}
	}
	if b, err := cluster.NewBroker(nodes[0].conn, "node0", nil); !errors.Is(err, cluster.ErrServed) {
		if err == nil {
			b.Close()
		}
		t.Errorf("NewBroker of a node id in use = %v, want ErrServed", err)
	}
}

// TestBrokerTopicSubscription: a node listens to a topic's subject while
// it has subscribers to it, once however many; a Subscribe whose context
// ends while another makes the bus subscription changes nothing.
func TestBrokerTopicSubscription(t *testing.T) {
	ctx := context.Background()
	node := startNodes(t, cluster.NewMemoryBus(), 1, quickOptions())[0]
	b, open := node.broker, &node.fault.topics
	steps := []struct {
		subscribe bool
		id        string
		open      int64
	}{
		{true, "a", 1}, {true, "b", 1}, {true, "a", 1}, {false, "a", 1}, {false, "a", 1}, {false, "b", 0}, {true, "c", 1}, {false, "c", 0},
	}
	for i, s := range steps {
		if s.subscribe {
			b.Subscribe(ctx, "t", counterFor(s.id), nil)
		} else {
			b.Unsubscribe(ctx, "t", s.id)
		}
		if got := open.Load(); got != s.open {
			t.Fatalf("step %d: %d topic subscriptions open, want %d", i, got, s.open)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprint(g, "-", i)
				topic := fmt.Sprint("t", i%3)
				b.Subscribe(ctx, topic, counterFor(id), nil)
				b.Unsubscribe(ctx, topic, id)
			}
		})
	}
	wg.Wait()
	if got := open.Load(); got != 0 {
		t.Fatalf("%d topic subscriptions open after everyone left, want 0", got)
	}

	node.fault.hold, node.fault.held = make(chan struct{}), make(chan struct{}, 1)
	first := make(chan error, 1)
	go func() {
		_, err := b.Subscribe(ctx, "slow", counterFor("first"), nil)
		first <- err
	}()
	<-node.fault.held // the first Subscribe holds the topic's gate
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if joined, err := b.Subscribe(short, "slow", counterFor("second"), nil); joined || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe while another makes the bus subscription = %v, %v; want false, DeadlineExceeded", joined, err)
	}
	node.fault.hold <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := presenceOf(b, "slow"); !slices.Equal(got, []string{"first="}) {
		t.Fatalf("Presence = %v, want first alone", got)
	}
	b.Unsubscribe(ctx, "slow", "first")
	if got := open.Load(); got != 0 {
		t.Fatalf("%d topic subscriptions open after everyone left, want 0", got)
	}
}
