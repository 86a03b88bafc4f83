package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/brokertest"
	"github.com/tetherkit/tether/wire"
)

// resumer is a broker.Resumable that records the offsets delivered to it.
type resumer struct {
	id     string
	after  uint64 // ResumeAfter's offset
	resume bool   // ResumeAfter's ok

	mu      sync.Mutex
	got     []uint64 // guarded by mu
	joined  []uint64 // guarded by mu; Joined's offsets
	asked   int      // guarded by mu; ResumeAfter calls
	badData error    // guarded by mu
}

var _ broker.Resumable = (*resumer)(nil)

func (r *resumer) ID() string { return r.id }

func (r *resumer) Deliver(d *broker.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := fmt.Sprint("m", d.Offset); string(d.Message.Data) != want && r.badData == nil {
		r.badData = fmt.Errorf("offset %d carries %q", d.Offset, d.Message.Data)
	}
	r.got = append(r.got, d.Offset)
}

func (r *resumer) ResumeAfter(string) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	return r.after, r.resume
}

func (r *resumer) Joined(_ string, offset uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.joined = append(r.joined, offset)
}

// awaitOffsets waits until r got as many offsets as want, and fails unless
// they are want.
func (r *resumer) awaitOffsets(t *testing.T, want []uint64) {
	t.Helper()
	brokertest.WaitFor(t, fmt.Sprintf("%s to get %d messages", r.id, len(want)), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.got) >= len(want)
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.badData != nil || !slices.Equal(r.got, want) {
		t.Fatalf("%s got %v (%v), want %v", r.id, r.got, r.badData, want)
	}
}

// publishNumbered publishes "m<offset>" to room through b, k times, the
// messages at the offsets in exclude with PublishOptions.Exclude id.
func publishNumbered(t *testing.T, b *cluster.Broker, from uint64, k int, exclude map[uint64]bool, id string) {
	t.Helper()
	ctx := testContext(t)
	for off := from; off < from+uint64(k); off++ {
		var opts *broker.PublishOptions
		if exclude[off] {
			opts = &broker.PublishOptions{Exclude: id}
		}
		if err := b.Publish(ctx, "room", wire.Message{Type: wire.Text, Data: fmt.Append(nil, "m", off)}, opts); err != nil {
			t.Error(err)
			return
		}
	}
}

// TestBrokerResume: a subscriber that continues a subscription
// (broker.Resumable) receives from the History what followed its offset,
// then the messages published meanwhile and after, each once, in order,
// but those published to exclude it; Joined is not called for it.
func TestBrokerResume(t *testing.T) {
	ctx := testContext(t)
	h, _ := newHistory(t, nil)
	bus := cluster.NewMemoryBus()
	nodes := brokertest.Start(t, bus.Connect, 2, historyOptions(h))
	exclude := map[uint64]bool{}
	for off := uint64(5); off <= 400; off += 7 {
		exclude[off] = true
	}
	r := &resumer{id: "resumed", after: 20, resume: true}
	publishNumbered(t, nodes[0].Broker, 1, 100, exclude, r.id)
	var wg sync.WaitGroup
	wg.Go(func() { publishNumbered(t, nodes[0].Broker, 101, 300, exclude, r.id) })
	if joined, err := nodes[1].Broker.Subscribe(ctx, "room", r, nil); err != nil || !joined {
		t.Fatalf("Subscribe = %v, %v", joined, err)
	}
	wg.Wait()
	var want []uint64
	for off := r.after + 1; off <= 400; off++ {
		if !exclude[off] {
			want = append(want, off)
		}
	}
	r.awaitOffsets(t, want)
	if r.asked != 1 || len(r.joined) != 0 {
		t.Fatalf("ResumeAfter called %d times, Joined %v; want once, never", r.asked, r.joined)
	}
}

// TestBrokerResumeAhead: a subscriber that continues from an offset the
// node has not delivered yet receives only what follows it; one that
// subscribes afresh is told where it starts (Joined: the last offset).
func TestBrokerResumeAhead(t *testing.T) {
	ctx := testContext(t)
	h, _ := newHistory(t, nil)
	nodes := brokertest.Start(t, cluster.NewMemoryBus().Connect, 1, historyOptions(h))
	b := nodes[0].Broker
	publishNumbered(t, b, 1, 10, nil, "")
	ahead := &resumer{id: "ahead", after: 13, resume: true}
	fresh := &resumer{id: "fresh"}
	for _, r := range []*resumer{ahead, fresh} {
		if joined, err := b.Subscribe(ctx, "room", r, nil); err != nil || !joined {
			t.Fatalf("Subscribe %s = %v, %v", r.id, joined, err)
		}
	}
	publishNumbered(t, b, 11, 10, nil, "")
	ahead.awaitOffsets(t, []uint64{14, 15, 16, 17, 18, 19, 20})
	fresh.awaitOffsets(t, []uint64{11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	if !slices.Equal(fresh.joined, []uint64{10}) || len(ahead.joined) != 0 {
		t.Fatalf("Joined: fresh %v, ahead %v; want [10], none", fresh.joined, ahead.joined)
	}
}

// blockingHistory is a real History whose Range, while block is set, tells
// ranging and waits until its context ends, as a History that cannot be
// reached does.
type blockingHistory struct {
	cluster.History
	block   atomic.Bool
	ranging chan struct{}
}

func (h *blockingHistory) Range(ctx context.Context, topic string, from uint64, limit int) ([]cluster.HistoryEntry, error) {
	if h.block.Load() {
		select {
		case h.ranging <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, fmt.Errorf("%w: blocked: %w", cluster.ErrHistoryUnavailable, ctx.Err())
	}
	return h.History.Range(ctx, topic, from, limit)
}

// TestBrokerResumeHistoryUnavailable: when the History does not give what
// a resumed subscriber missed (its fetch ends with Subscribe's context),
// Subscribe fails and undoes the join: the subscriber gets nothing, then
// or later, and is not in presence. A later Subscribe that continues from
// the same offset gets everything, each once, in order.
func TestBrokerResumeHistoryUnavailable(t *testing.T) {
	ctx := testContext(t)
	inner, _ := newHistory(t, nil)
	h := &blockingHistory{History: inner, ranging: make(chan struct{}, 1)}
	nodes := brokertest.Start(t, cluster.NewMemoryBus().Connect, 2, historyOptions(h))
	b := nodes[1].Broker
	publishNumbered(t, nodes[0].Broker, 1, 30, nil, "")
	h.block.Store(true)
	failed := &resumer{id: "resumed", after: 10, resume: true}
	sctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-h.ranging:
		case <-ctx.Done():
		}
		publishNumbered(t, nodes[0].Broker, 31, 10, nil, "") // held for it, then dropped
		cancel()
	}()
	joined, err := b.Subscribe(sctx, "room", failed, nil)
	cancel()
	if joined || !errors.Is(err, context.Canceled) || !errors.Is(err, cluster.ErrHistoryUnavailable) {
		t.Fatalf("Subscribe = %v, %v; want false and the History's error", joined, err)
	}
	if members, err := b.Presence(ctx, "room"); err != nil || len(members) != 0 {
		t.Fatalf("Presence = %v, %v; want none", members, err)
	}
	h.block.Store(false)
	again := &resumer{id: "resumed", after: 10, resume: true}
	if joined, err := b.Subscribe(ctx, "room", again, nil); err != nil || !joined {
		t.Fatalf("Subscribe again = %v, %v", joined, err)
	}
	publishNumbered(t, nodes[0].Broker, 41, 10, nil, "")
	var want []uint64
	for off := uint64(11); off <= 50; off++ {
		want = append(want, off)
	}
	again.awaitOffsets(t, want)
	failed.mu.Lock()
	defer failed.mu.Unlock()
	if len(failed.got) != 0 {
		t.Fatalf("the subscriber whose Subscribe failed got %v", failed.got)
	}
}
