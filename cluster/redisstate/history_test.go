package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/brokertest"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/wire"
)

func newHistory(t testing.TB, opts *redisstate.HistoryOptions) (*redisstate.TopicHistory, string) {
	t.Helper()
	e := enginetest.RedisT(t)
	h, err := redisstate.NewHistory(newClient(t, e.Addr), opts)
	if err != nil {
		t.Fatalf("NewHistory: %v", err)
	}
	return h, e.Addr
}

// TestHistoryAppendRange: offsets follow each other from 1 per topic;
// Range returns the messages with what they excluded; what is trimmed, or
// past the last offset by more than one, is ErrHistoryGap.
func TestHistoryAppendRange(t *testing.T) {
	ctx := testContext(t)
	h, addr := newHistory(t, &redisstate.HistoryOptions{MaxLen: 3})
	bin := wire.Message{Type: wire.Binary, Data: []byte{0, 0xff, '\n'}}
	for i, m := range []wire.Message{text("a"), bin, text("c"), text("d")} {
		off, err := h.Append(ctx, "room:1", m, fmt.Sprint("s", i))
		if err != nil || off != uint64(i+1) {
			t.Fatalf("Append %d = %d, %v; want offset %d", i, off, err, i+1)
		}
	}
	if off, err := h.Append(ctx, "other", text("x"), ""); err != nil || off != 1 {
		t.Fatalf("Append to another topic = %d, %v; want offset 1", off, err)
	}
	got, err := h.Range(ctx, "room:1", 2, 10)
	want := []cluster.HistoryEntry{{Offset: 2, Message: bin, Exclude: "s1"}, {Offset: 3, Message: text("c"), Exclude: "s2"}, {Offset: 4, Message: text("d"), Exclude: "s3"}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Range(2) = %v, %v; want %v", got, err, want)
	}
	if got, err := h.Range(ctx, "room:1", 3, 1); err != nil || len(got) != 1 || got[0].Offset != 3 {
		t.Fatalf("Range(3, limit 1) = %v, %v", got, err)
	}
	if got, err := h.Range(ctx, "room:1", 5, 10); err != nil || len(got) != 0 {
		t.Fatalf("Range past the last = %v, %v; want none", got, err)
	}
	for _, from := range []uint64{1, 6} {
		if got, err := h.Range(ctx, "room:1", from, 10); !errors.Is(err, cluster.ErrHistoryGap) {
			t.Errorf("Range(%d) = %v, %v; want ErrHistoryGap (trimmed, or past the last + 1)", from, got, err)
		}
	}
	if heads, err := h.Heads(ctx, []string{"room:1", "none", "other"}); err != nil || fmt.Sprint(heads) != "[4 0 1]" {
		t.Fatalf("Heads = %v, %v; want [4 0 1]", heads, err)
	}
	client := newClient(t, addr)
	client.Set(ctx, "tether:topic:{bad}:h", "not a stream", 0)
	if _, err := h.Append(ctx, "bad", text("x"), ""); !errors.Is(err, cluster.ErrHistoryCorrupt) {
		t.Errorf("Append to a topic whose stream is a string = %v, want cluster.ErrHistoryCorrupt", err)
	}
	client.Set(ctx, "tether:topic:{bad}:n", "x", 0)
	if _, err := h.Heads(ctx, []string{"bad"}); !errors.Is(err, cluster.ErrHistoryCorrupt) {
		t.Errorf("Heads of a topic whose counter is not a number = %v, want cluster.ErrHistoryCorrupt", err)
	}
}

// offsetRecorder is a Subscriber that checks that it gets a topic's
// offsets one after the other, each once, and counts its gap closes.
type offsetRecorder struct {
	id string

	mu     sync.Mutex
	last   uint64 // guarded by mu
	count  int    // guarded by mu
	fault  error  // guarded by mu
	closes atomic.Int64
}

func (r *offsetRecorder) ID() string { return r.id }

func (r *offsetRecorder) Deliver(d *broker.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last != 0 && d.Offset != r.last+1 && r.fault == nil {
		r.fault = fmt.Errorf("%s: offset %d after %d", r.id, d.Offset, r.last)
	}
	if want := fmt.Sprint("m", d.Offset); string(d.Message.Data) != want && !strings.HasPrefix(string(d.Message.Data), "p") && r.fault == nil {
		r.fault = fmt.Errorf("%s: offset %d carries %q", r.id, d.Offset, d.Message.Data)
	}
	r.last = d.Offset
	r.count++
}

// CloseGap counts the close; what comes next starts a new run of offsets.
func (r *offsetRecorder) CloseGap(string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = 0
	r.closes.Add(1)
}

// gatedHistory is a History whose Range and Heads wait while the test
// holds its gate.
type gatedHistory struct {
	cluster.History
	gate sync.RWMutex
}

func (h *gatedHistory) Range(ctx context.Context, topic string, from uint64, limit int) ([]cluster.HistoryEntry, error) {
	h.gate.RLock()
	defer h.gate.RUnlock()
	return h.History.Range(ctx, topic, from, limit)
}

func (h *gatedHistory) Heads(ctx context.Context, topics []string) ([]uint64, error) {
	h.gate.RLock()
	defer h.gate.RUnlock()
	return h.History.Heads(ctx, topics)
}

// await waits until r got n messages, failing on a fault.
func (r *offsetRecorder) await(t *testing.T, n int) {
	t.Helper()
	brokertest.WaitFor(t, fmt.Sprintf("%s to get %d messages", r.id, n), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fault != nil {
			t.Fatal(r.fault)
		}
		if r.count > n {
			t.Fatalf("%s got %d messages, want %d", r.id, r.count, n)
		}
		return r.count == n
	})
}

// lossyBus loses the topic publishes of its node that drop says to lose.
type lossyBus struct {
	cluster.Bus
	n    atomic.Int64
	drop func(n int64) bool // n counts the node's topic publishes from 1
	lost atomic.Int64
}

func (b *lossyBus) Publish(ctx context.Context, subject string, data []byte) error {
	if strings.HasPrefix(subject, "tether.topic.") && b.drop != nil && b.drop(b.n.Add(1)) {
		b.lost.Add(1)
		return nil
	}
	return b.Bus.Publish(ctx, subject, data)
}

func historyOptions(h cluster.History) *cluster.BrokerOptions {
	o := brokertest.QuickOptions()
	o.History = h
	o.GapWait = 20 * time.Millisecond
	return o
}

// TestBrokerHistoryOrder: with a History, concurrent publishers on three
// nodes give one order: every subscriber of every node gets every
// offset, once, one after the other.
func TestBrokerHistoryOrder(t *testing.T) {
	ctx := testContext(t)
	h, _ := newHistory(t, nil)
	bus := cluster.NewMemoryBus()
	nodes := brokertest.Start(t, bus.Connect, 3, historyOptions(h))
	var subs []*offsetRecorder
	for i, n := range nodes {
		for j := range 2 {
			r := &offsetRecorder{id: fmt.Sprintf("s%d-%d", i, j)}
			if _, err := n.Broker.Subscribe(ctx, "room", r, nil); err != nil {
				t.Fatal(err)
			}
			subs = append(subs, r)
		}
	}
	const each = 300
	var wg sync.WaitGroup
	for i, n := range nodes {
		for p := range 2 {
			wg.Go(func() {
				for k := range each {
					m := wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "p%d-%d-%d", i, p, k)}
					if err := n.Broker.Publish(ctx, "room", m, nil); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, r := range subs {
		r.await(t, len(nodes)*2*each)
	}
}

// TestBrokerHistoryFillsGaps: what the bus loses, in the middle of a
// burst and at its end, is fetched from the History: every subscriber
// gets every message, in order, and none is closed.
func TestBrokerHistoryFillsGaps(t *testing.T) {
	ctx := testContext(t)
	h, _ := newHistory(t, nil)
	bus := cluster.NewMemoryBus()
	const total = 200
	lossy := &lossyBus{Bus: bus.Connect(), drop: func(n int64) bool { return n%7 == 0 || n == total }}
	opts := historyOptions(h)
	publisher := brokertest.StartNode(t, func() cluster.Bus { return lossy }, "pub", opts)
	others := brokertest.Start(t, bus.Connect, 2, opts)
	var subs []*offsetRecorder
	for i, n := range append(others, publisher) {
		r := &offsetRecorder{id: fmt.Sprint("s", i)}
		if _, err := n.Broker.Subscribe(ctx, "t", r, nil); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, r)
	}
	for k := range total {
		if err := publisher.Broker.Publish(ctx, "t", text(fmt.Sprint("m", k+1)), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range subs {
		r.await(t, total)
		if c := r.closes.Load(); c != 0 {
			t.Errorf("%s closed %d times", r.id, c)
		}
	}
	if lossy.lost.Load() < total/7 {
		t.Fatalf("the bus lost %d messages, want %d at least", lossy.lost.Load(), total/7)
	}
	for _, n := range others {
		if s := n.Broker.Stats(); s.Fetched < uint64(lossy.lost.Load()) || s.Gaps != 0 {
			t.Errorf("node %s: %+v; want every lost message fetched, no gap", n.Broker.ID(), s)
		}
	}
}

// TestBrokerHistoryGapCloses: messages the bus lost and the History no
// longer holds close the topic's subscribers (4000 in package tether),
// once; delivery goes on after them for those that stay.
func TestBrokerHistoryGapCloses(t *testing.T) {
	ctx := testContext(t)
	h, _ := newHistory(t, &redisstate.HistoryOptions{MaxLen: 3})
	gated := &gatedHistory{History: h}
	bus := cluster.NewMemoryBus()
	nodes := []*brokertest.Node{
		brokertest.StartNode(t, bus.Connect, "pub", historyOptions(h)),
		brokertest.StartNode(t, bus.Connect, "sub", historyOptions(gated)),
	}
	r := &offsetRecorder{id: "s"}
	if _, err := nodes[1].Broker.Subscribe(ctx, "t", r, nil); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].Broker.Publish(ctx, "t", text("m1"), nil); err != nil {
		t.Fatal(err)
	}
	r.await(t, 1)
	// Ten messages appended whose publishes the bus lost: the History
	// keeps the last three. The subscriber's node reads the History once
	// all are in.
	gated.gate.Lock()
	for k := range 10 {
		if _, err := h.Append(ctx, "t", text(fmt.Sprint("m", k+2)), ""); err != nil {
			gated.gate.Unlock()
			t.Fatal(err)
		}
	}
	gated.gate.Unlock()
	brokertest.WaitFor(t, "the subscriber to be closed", func() bool { return r.closes.Load() == 1 })
	if s := nodes[1].Broker.Stats(); s.Gaps != 1 {
		t.Errorf("Stats = %+v, want 1 gap", s)
	}
	if err := nodes[0].Broker.Publish(ctx, "t", text("m12"), nil); err != nil {
		t.Fatal(err)
	}
	brokertest.WaitFor(t, "offset 12", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.last == 12
	})
	if c := r.closes.Load(); c != 1 {
		t.Errorf("closed %d times, want 1", c)
	}
}

// TestBrokerHistoryUnavailable: a publish the History cannot take reaches
// nobody and returns an error wrapping cluster.ErrHistoryUnavailable.
func TestBrokerHistoryUnavailable(t *testing.T) {
	ctx := testContext(t)
	e := enginetest.RedisT(t)
	client := redis.NewClient(&redis.Options{Addr: e.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer client.Close()
	h, err := redisstate.NewHistory(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := historyOptions(h)
	opts.Logger = slog.New(slog.DiscardHandler)
	nodes := brokertest.Start(t, cluster.NewMemoryBus().Connect, 1, opts)
	r := &offsetRecorder{id: "s"}
	if _, err := nodes[0].Broker.Subscribe(ctx, "t", r, nil); err != nil {
		t.Fatal(err)
	}
	e.Stop()
	if err := nodes[0].Broker.Publish(ctx, "t", text("m1"), nil); !errors.Is(err, cluster.ErrHistoryUnavailable) {
		t.Errorf("Publish with Redis down = %v, want cluster.ErrHistoryUnavailable", err)
	}
	if _, err := nodes[0].Broker.Subscribe(ctx, "u", r, nil); !errors.Is(err, cluster.ErrHistoryUnavailable) {
		t.Errorf("Subscribe to a new topic with Redis down = %v, want cluster.ErrHistoryUnavailable", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count != 0 {
		t.Errorf("the subscriber got %d messages", r.count)
	}
}
