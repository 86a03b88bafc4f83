package brokertest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/wire"
)

// Run checks cluster.Broker across nodes on the Bus that connect returns,
// as subtests of t: each subtest starts its own nodes, each on a
// connection of its own. Each call of connect must return a new connection
// to the same engine; Run closes every connection it gets once the subtest
// that got it ends. The Brokers use the subjects of a cluster
// ("tether.topic...", "tether.presence", "tether.nodes"): the engine must
// not carry another cluster's while Run runs.
func Run(t *testing.T, connect func(t *testing.T) cluster.Bus) {
	s := &suite{connect: connect}
	for _, c := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"ExactlyOnceInOrder", s.exactlyOnceInOrder},
		{"ExcludeAcrossNodes", s.excludeAcrossNodes},
		{"SubscribeActiveOnReturn", s.subscribeActiveOnReturn},
		{"Churn", s.churn},
		{"TopicSubscription", s.topicSubscription},
		{"PresenceConverges", s.presenceConverges},
		{"NodeDies", s.nodeDies},
		{"Goodbye", s.goodbye},
		{"LostEvents", s.lostEvents},
		{"BusOutage", s.busOutage},
		{"BadInput", s.badInput},
	} {
		t.Run(c.name, c.fn)
	}
}

type suite struct {
	connect func(t *testing.T) cluster.Bus
}

// startSubscribed starts 3 nodes with opts, watches their presence
// events, and has them subscribe n sessions (SubscribeMany); it returns
// once every node's presence is what that makes (want).
func (s *suite) startSubscribed(t *testing.T, n int, opts *cluster.BrokerOptions) (nodes []*Node, views []*PresenceView, want map[string][]string) {
	t.Helper()
	nodes = s.start(t, 3, opts)
	views = WatchAll(nodes)
	want = SubscribeMany(t, nodes, n)
	Converged(t, nodes, views, want)
	return nodes, views, want
}

// start starts n nodes for test t; see Start.
func (s *suite) start(t *testing.T, n int, opts *cluster.BrokerOptions) []*Node {
	t.Helper()
	return Start(t, func() cluster.Bus { return s.connect(t) }, n, opts)
}

// exactlyOnceInOrder: 6 publishers on 3 nodes publish 10,000
// messages over 20 topics to 3,000 subscribers spread over the nodes: each
// subscriber receives every message of its topic once, each publisher's in
// order.
func (s *suite) exactlyOnceInOrder(t *testing.T) {
	const (
		perNode    = 1000
		topics     = 20
		publishers = 6
		publishes  = 10_000
	)
	ctx := context.Background()
	nodes := s.start(t, 3, QuickOptions())
	var subs []*Recorder
	for i, n := range nodes {
		for j := range perNode {
			r := NewRecorder(fmt.Sprintf("n%d-s%d", i, j))
			if _, err := n.Broker.Subscribe(ctx, fmt.Sprint("topic-", j%topics), r, nil); err != nil {
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
			b := nodes[p%len(nodes)].Broker
			for k := p; k < publishes; k += publishers {
				if err := b.Publish(ctx, fmt.Sprint("topic-", topicOf(p, k)), Numbered(uint16(p), uint32(k+1)), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, r := range subs {
		r.Await(t, want[i%perNode%topics])
	}
	// What is still on its way comes before a last message of each
	// publisher, which the recorders check for order.
	for p := range publishers {
		for k := range topics {
			nodes[p%len(nodes)].Broker.Publish(ctx, fmt.Sprint("topic-", k), Numbered(uint16(p), publishes+1), nil)
		}
	}
	for i, r := range subs {
		r.Await(t, want[i%perNode%topics]+publishers)
	}
	t.Logf("%d subscribers on 3 nodes got exactly the %d messages of their topic, in order per publisher (%d deliveries)",
		len(subs), publishes, len(subs)*publishes/topics)
}

// excludeAcrossNodes: the excluded session receives nothing,
// whichever node it is on; every other receives the message once, and the
// subscribers of one node share one Delivery.
func (s *suite) excludeAcrossNodes(t *testing.T) {
	ctx := context.Background()
	nodes := s.start(t, 3, QuickOptions())
	var subs []*Recorder
	for i, n := range nodes {
		for j := range 3 {
			r := NewRecorder(fmt.Sprintf("n%d-s%d", i, j))
			r.delivery = make(map[*broker.Delivery]int)
			n.Broker.Subscribe(ctx, "room", r, nil)
			subs = append(subs, r)
		}
	}
	for k, excluded := range subs { // node k%3 publishes its k-th
		publisher := nodes[k%3].Broker
		if err := publisher.Publish(ctx, "room", Numbered(uint16(k%3), uint32(k+1)), &broker.PublishOptions{Exclude: excluded.Session}); err != nil {
			t.Fatal(err)
		}
	}
	// A last message to all: once it is in, so is everything before it.
	nodes[0].Broker.Publish(ctx, "room", Numbered(0, uint32(len(subs)+1)), nil)
	for i, r := range subs {
		r.Await(t, len(subs))
		r.mu.Lock()
		for d := range r.delivery {
			if binary.BigEndian.Uint32(d.Message.Data[2:]) == uint32(i+1) {
				t.Errorf("%s got the message that excluded it", r.Session)
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

// subscribeActiveOnReturn: once Subscribe has returned on one
// node, a publish on another reaches the new subscriber.
func (s *suite) subscribeActiveOnReturn(t *testing.T) {
	ctx := context.Background()
	nodes := s.start(t, 3, QuickOptions())
	for i := range 200 {
		topic := fmt.Sprint("fresh-", i)
		r := NewRecorder("s")
		if _, err := nodes[1+i%2].Broker.Subscribe(ctx, topic, r, nil); err != nil {
			t.Fatal(err)
		}
		if err := nodes[0].Broker.Publish(ctx, topic, Numbered(0, 1), nil); err != nil {
			t.Fatal(err)
		}
		WaitFor(t, "the first publish after Subscribe", func() bool { n, _ := r.Counts(); return n == 1 })
		if _, err := nodes[1+i%2].Broker.Unsubscribe(ctx, topic, "s"); err != nil {
			t.Fatal(err)
		}
	}
}

// churn: sessions subscribe and unsubscribe on every node while
// publishers publish: the steady subscribers get every message once and in
// order; those coming and going get a part of them, once and in order.
func (s *suite) churn(t *testing.T) {
	const publishes = 2000
	ctx := context.Background()
	nodes := s.start(t, 3, QuickOptions())
	var steady []*Recorder
	for i, n := range nodes {
		r := NewRecorder(fmt.Sprint("steady", i))
		n.Broker.Subscribe(ctx, "t", r, nil)
		steady = append(steady, r)
	}
	done := make(chan struct{})
	var churn sync.WaitGroup
	var churners []*Recorder
	var churnersMu sync.Mutex
	for i, n := range nodes {
		churn.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				r := NewRecorder(fmt.Sprintf("churn%d-%d", i, k))
				churnersMu.Lock()
				churners = append(churners, r)
				churnersMu.Unlock()
				topic := []string{"t", "u"}[k%2] // "u" has nobody else: its bus subscription comes and goes
				if _, err := n.Broker.Subscribe(ctx, topic, r, nil); err != nil {
					t.Error(err)
					return
				}
				if _, err := n.Broker.Unsubscribe(ctx, topic, r.Session); err != nil {
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
					if err := n.Broker.Publish(ctx, topic, Numbered(uint16(p), uint32(k+1)), nil); err != nil {
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
		r.Await(t, 3*publishes)
	}
	for _, r := range churners {
		if n, err := r.Counts(); err != nil || n > 3*publishes {
			t.Fatalf("%s: %d messages, %v", r.Session, n, err)
		}
	}
	t.Logf("%d subscriptions came and went during %d publishes", len(churners), 6*publishes)
}

// presenceConverges: joins and leaves on every node at once;
// every node's Presence and OnPresence agree on who is where.
func (s *suite) presenceConverges(t *testing.T) {
	nodes, _, _ := s.startSubscribed(t, 600, QuickOptions())
	for i, n := range nodes {
		if got := n.Broker.Nodes(); len(got) != 2 {
			t.Errorf("node %d hears from %v, want the 2 others", i, got)
		}
	}
}

// nodeDies: a node's connection closes (the process died): its
// members leave every other node's presence, with Left events, once
// NodeTimeout has passed.
func (s *suite) nodeDies(t *testing.T) {
	nodes, views, want := s.startSubscribed(t, 90, QuickOptions())
	nodes[2].Kill()
	Converged(t, nodes[:2], views[:2], Without(want, 3, func(k int) bool { return k == 2 }))
	for i, n := range nodes[:2] {
		if s := n.Broker.Stats(); s.NodesGone != 1 || slices.Contains(n.Broker.Nodes(), nodes[2].Broker.ID()) {
			t.Errorf("node %d: %d nodes gone, hears from %v; want node 2 gone", i, s.NodesGone, n.Broker.Nodes())
		}
	}
}

// goodbye: a node that closes its Broker leaves at once: its
// members leave the others' presence without waiting for NodeTimeout.
func (s *suite) goodbye(t *testing.T) {
	opts := QuickOptions()
	opts.NodeTimeout = time.Hour
	nodes, views, want := s.startSubscribed(t, 30, opts)
	nodes[1].Broker.Close()
	want = Without(want, 3, func(k int) bool { return k == 1 })
	Converged(t, []*Node{nodes[0], nodes[2]}, []*PresenceView{views[0], views[2]}, want)
	// An event of the departed node that the goodbye overtook, then
	// garbage after it on the same subject: once the garbage is counted,
	// the event has come, and changed nothing.
	id := nodes[1].Broker.ID()
	raw := s.connect(t)
	late := append(append([]byte{'e', byte(len(id))}, id...), "\x01j\x02p1\x05ghost"...)
	before := [2]uint64{nodes[0].Broker.Stats().Malformed, nodes[2].Broker.Stats().Malformed}
	for _, data := range [][]byte{late, []byte("garbage")} {
		if err := raw.Publish(context.Background(), "tether.presence", data); err != nil {
			t.Fatal(err)
		}
	}
	WaitFor(t, "the garbage counted", func() bool {
		return nodes[0].Broker.Stats().Malformed > before[0] && nodes[2].Broker.Stats().Malformed > before[1]
	})
	Converged(t, []*Node{nodes[0], nodes[2]}, []*PresenceView{views[0], views[2]}, want)
	if got := nodes[0].Broker.Nodes(); slices.Contains(got, id) {
		t.Errorf("node 0 hears from %v after node 1's goodbye", got)
	}
	if err := nodes[1].Broker.Publish(context.Background(), "p1", Numbered(0, 1), nil); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

// lostEvents: presence events lost on the bus are found missing
// by the next heartbeats, and a snapshot repairs presence.
func (s *suite) lostEvents(t *testing.T) {
	ctx := context.Background()
	nodes, views, want := s.startSubscribed(t, 30, QuickOptions())
	before := nodes[1].Broker.Stats().Snapshots
	// The last events of node0: nothing follows to show the gap but the
	// heartbeats.
	nodes[0].Fault.DropPresence.Store(2)
	nodes[0].Broker.Subscribe(ctx, "p0", &Counter{Session: "lost-join"}, []byte("x"))
	nodes[0].Broker.Unsubscribe(ctx, "p3", "s3")
	want["p0"] = slices.Sorted(slices.Values(append(slices.Clone(want["p0"]), "lost-join=x")))
	want["p3"] = slices.DeleteFunc(slices.Clone(want["p3"]), func(m string) bool { return m == "s3=user3" })
	Converged(t, nodes, views, want)
	if after := nodes[1].Broker.Stats().Snapshots; after <= before {
		t.Errorf("node1 fetched %d snapshots, then %d: want one more", before, after)
	}
	// One lost in the middle: the next event shows the gap.
	nodes[2].Fault.DropPresence.Store(1)
	nodes[2].Broker.Subscribe(ctx, "p4", &Counter{Session: "lost-middle"}, nil)
	nodes[2].Broker.Subscribe(ctx, "p4", &Counter{Session: "after-gap"}, nil)
	want["p4"] = slices.Sorted(slices.Values(append(slices.Clone(want["p4"]), "lost-middle=", "after-gap=")))
	Converged(t, nodes, views, want)
}

// busOutage: a node cut off from the bus sees the others'
// members leave, and they see its members leave; when the bus comes back,
// everyone's members join again everywhere.
func (s *suite) busOutage(t *testing.T) {
	ctx := context.Background()
	nodes, views, want := s.startSubscribed(t, 30, QuickOptions())
	nodes[2].Fault.Paused.Store(true)
	Converged(t, nodes[:2], views[:2], Without(want, 3, func(k int) bool { return k == 2 }))
	Converged(t, nodes[2:], views[2:], Without(want, 3, func(k int) bool { return k != 2 }))
	// Publishing on the cut-off node: its own subscribers have the
	// message, and the error says the others do not.
	r := NewRecorder("cut-off")
	nodes[2].Broker.Subscribe(ctx, "p2", r, nil)
	if err := nodes[2].Broker.Publish(ctx, "p2", Numbered(0, 1), nil); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Publish while the bus is down = %v, want ErrUnavailable", err)
	}
	if n, _ := r.Counts(); n != 1 {
		t.Errorf("the publishing node's subscriber got %d messages, want 1", n)
	}
	nodes[2].Broker.Unsubscribe(ctx, "p2", "cut-off")
	nodes[2].Fault.Paused.Store(false)
	Converged(t, nodes, views, want)
}

// badInput: malformed messages on every subject the brokers
// listen to are dropped and counted; nothing else changes.
func (s *suite) badInput(t *testing.T) {
	ctx := context.Background()
	nodes := s.start(t, 2, QuickOptions())
	views := WatchAll(nodes)
	r := NewRecorder("s")
	nodes[1].Broker.Subscribe(ctx, "room:go", r, []byte("info"))
	want := map[string][]string{"room:go": {"s=info"}}
	Converged(t, nodes, views, want)
	raw := s.connect(t)
	topicSubject := "tether.topic.cm9vbTpnbw" // base64url("room:go")
	pub := func(origin, exclude, topic string, typ byte, data string) string {
		b := []byte{'p'}
		for _, s := range []string{origin, exclude, topic} {
			b = append(b, byte(len(s)))
			b = append(b, s...)
		}
		return string(append(append(b, 0, typ), data...)) // offset 0: none
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
	before := [2]uint64{nodes[0].Broker.Stats().Malformed, nodes[1].Broker.Stats().Malformed}
	for _, g := range garbage {
		if err := raw.Publish(ctx, g.subject, []byte(g.data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, ask := range []string{"", "q", "q\x05room", "a\x00\x00", "q\x00\x00extra"} {
		reply, err := raw.Request(ctx, "tether.presence."+nodes[0].Broker.ID(), []byte(ask))
		if err != nil || len(reply) != 0 {
			t.Errorf("snapshot request %q = %q, %v; want an empty reply", ask, reply, err)
		}
	}
	// A well-formed publish after the garbage is delivered: the garbage
	// came before it and disturbed nothing.
	if err := raw.Publish(ctx, topicSubject, []byte(pub("x", "", "room:go", byte(wire.Binary), "\x00\x07\x00\x00\x00\x01"))); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, "the good message", func() bool { n, _ := r.Counts(); return n == 1 })
	WaitFor(t, "every malformed message counted", func() bool {
		// node1 listens to the topic; node0 does not, and had the
		// snapshot requests.
		return nodes[1].Broker.Stats().Malformed-before[1] == uint64(len(garbage)) &&
			nodes[0].Broker.Stats().Malformed-before[0] == uint64(len(garbage)-9+5)
	})
	Converged(t, nodes, views, want)
	if got := nodes[0].Broker.Nodes(); !slices.Equal(got, []string{nodes[1].Broker.ID()}) {
		t.Errorf("node0 hears from %v, want node1 only", got)
	}
}

// topicSubscription: a node listens to a topic's subject while
// it has subscribers to it, once however many; a Subscribe whose context
// ends while another makes the bus subscription changes nothing.
func (s *suite) topicSubscription(t *testing.T) {
	ctx := context.Background()
	node := s.start(t, 1, QuickOptions())[0]
	b, open := node.Broker, &node.Fault.TopicSubscriptions
	steps := []struct {
		subscribe bool
		id        string
		open      int64
	}{
		{true, "a", 1}, {true, "b", 1}, {true, "a", 1}, {false, "a", 1}, {false, "a", 1}, {false, "b", 0}, {true, "c", 1}, {false, "c", 0},
	}
	for i, s := range steps {
		if s.subscribe {
			b.Subscribe(ctx, "t", &Counter{Session: s.id}, nil)
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
				b.Subscribe(ctx, topic, &Counter{Session: id}, nil)
				b.Unsubscribe(ctx, topic, id)
			}
		})
	}
	wg.Wait()
	if got := open.Load(); got != 0 {
		t.Fatalf("%d topic subscriptions open after everyone left, want 0", got)
	}

	node.Fault.Hold, node.Fault.Held = make(chan struct{}), make(chan struct{}, 1)
	first := make(chan error, 1)
	go func() {
		_, err := b.Subscribe(ctx, "slow", &Counter{Session: "first"}, nil)
		first <- err
	}()
	<-node.Fault.Held // the first Subscribe holds the topic's gate
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if joined, err := b.Subscribe(short, "slow", &Counter{Session: "second"}, nil); joined || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe while another makes the bus subscription = %v, %v; want false, DeadlineExceeded", joined, err)
	}
	node.Fault.Hold <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := PresenceOf(b, "slow"); !slices.Equal(got, []string{"first="}) {
		t.Fatalf("Presence = %v, want first alone", got)
	}
	b.Unsubscribe(ctx, "slow", "first")
	if got := open.Load(); got != 0 {
		t.Fatalf("%d topic subscriptions open after everyone left, want 0", got)
	}
}
