package broker

import (
	"context"
	"runtime"
	"slices"
	"sync"

	"github.com/tetherkit/tether/internal/subscribers"
	"github.com/tetherkit/tether/wire"
)

// Memory is the Broker of one node: subscriptions and presence in this
// process's memory, nothing to install. It is what a tether.Server uses
// unless Options.Broker names another.
//
// A publish is delivered on the publisher's goroutine, spread over the
// machine's cores when the topic has many subscribers, each goroutine taking
// its share in the order the sessions subscribed (their memory, allocated
// when they connected, is then mostly next to the last one's); Publish
// returns once every subscriber has the message in its queue. Memory holds no goroutine
// while it has no presence event to report.
type Memory struct {
	mu     sync.RWMutex
	topics map[string]*topic // guarded by mu; a topic with no subscriber is removed

	presence presenceQueue
}

// topic is one topic's subscribers.
type topic struct {
	// subs holds the subscriptions by session id, in the order they
	// were made: Publish delivers in that order.
	subs subscribers.Set[string, subscription]
	// list is subs' Subscribers for Publish to range over without the
	// lock: built by the first Publish after a change, never changed once
	// built (a change sets it to nil).
	list []Subscriber
}

type subscription struct {
	sub  Subscriber
	info []byte
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{topics: make(map[string]*topic)}
}

var _ Broker = (*Memory)(nil)

// Subscribe implements Broker.
func (b *Memory) Subscribe(ctx context.Context, name string, sub Subscriber, info []byte) (bool, error) {
	if err := CheckTopic(name); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	id := sub.ID()
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if t == nil {
		t = &topic{}
		b.topics[name] = t
	}
	if _, ok := t.subs.Get(id); ok {
		return false, nil
	}
	info = slices.Clone(info)
	t.subs.Add(id, subscription{sub: sub, info: info})
	t.list = nil
	b.presence.add(PresenceEvent{Topic: name, Change: Joined, Member: Member{Session: id, Info: info}})
	return true, nil
}

// Unsubscribe implements Broker.
func (b *Memory) Unsubscribe(ctx context.Context, name, id string) (bool, error) {
	if err := CheckTopic(name); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if t == nil {
		return false, nil
	}
	s, ok := t.subs.Remove(id)
	if !ok {
		return false, nil
	}
	t.list = nil
	if t.subs.Len() == 0 {
		delete(b.topics, name)
	}
	b.presence.add(PresenceEvent{Topic: name, Change: Left, Member: Member{Session: id, Info: s.info}})
	return true, nil
}

// Publish implements Broker.
func (b *Memory) Publish(ctx context.Context, name string, m wire.Message, opts *PublishOptions) error {
	if err := CheckTopic(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var exclude string
	if opts != nil {
		exclude = opts.Exclude
	}
	subs := b.subscribers(name)
	if len(subs) == 0 {
		return nil
	}
	d := &Delivery{Topic: name, Message: m, Frames: new(wire.Frames)}
	Fanout(subs, d, exclude)
	return nil
}

// subscribers returns the subscribers of topic name, a list nobody changes.
func (b *Memory) subscribers(name string) []Subscriber {
	b.mu.RLock()
	t := b.topics[name]
	var list []Subscriber
	if t != nil {
		list = t.list
	}
	b.mu.RUnlock()
	if t == nil || list != nil {
		return list
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t = b.topics[name]; t == nil {
		return nil
	}
	if t.list == nil {
		t.list = make([]Subscriber, 0, t.subs.Len())
		for _, s := range t.subs.All() {
			t.list = append(t.list, s.sub)
		}
	}
	return t.list
}

// Presence implements Broker.
func (b *Memory) Presence(ctx context.Context, name string) ([]Member, error) {
	if err := CheckTopic(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topics[name]
	if t == nil {
		return nil, nil
	}
	members := make([]Member, 0, t.subs.Len())
	for id, s := range t.subs.All() {
		members = append(members, Member{Session: id, Info: s.info})
	}
	return members, nil
}

// OnPresence implements Broker.
func (b *Memory) OnPresence(fn func(PresenceEvent)) { b.presence.listen(fn) }

// fanoutChunk is the fewest subscribers a goroutine of Fanout delivers to:
// below it, the cost of starting goroutines outweighs what they share.
const fanoutChunk = 256

// Fanout calls Deliver(d) on every subscriber in subs but the one whose ID
// is exclude ("" for none), and returns once every call has returned.
// Many subscribers are spread over goroutines, as many as the process may
// run at once (GOMAXPROCS). A Broker of a cluster calls it on each node
// with that node's subscribers.
func Fanout(subs []Subscriber, d *Delivery, exclude string) {
	workers := min(runtime.GOMAXPROCS(0), (len(subs)+fanoutChunk-1)/fanoutChunk)
	if workers <= 1 {
		deliverAll(subs, d, exclude)
		return
	}
	var wg sync.WaitGroup
	per := (len(subs) + workers - 1) / workers
	for part := range slices.Chunk(subs[per:], per) {
		wg.Go(func() { deliverAll(part, d, exclude) })
	}
	deliverAll(subs[:per], d, exclude) // this goroutine takes a share too
	wg.Wait()
}

func deliverAll(subs []Subscriber, d *Delivery, exclude string) {
	for _, s := range subs {
		if exclude == "" || s.ID() != exclude {
			s.Deliver(d)
		}
	}
}

// presenceQueue holds presence events for the OnPresence function and
// calls it, in order, on a goroutine that runs while events wait.
type presenceQueue struct {
	mu      sync.Mutex
	fn      func(PresenceEvent) // guarded by mu; set once
	events  []PresenceEvent     // guarded by mu; oldest first
	running bool                // guarded by mu; a goroutine calls fn
}

func (q *presenceQueue) listen(fn func(PresenceEvent)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fn == nil {
		q.fn = fn
	}
}

// add queues e for the listener, if there is one.
func (q *presenceQueue) add(e PresenceEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fn == nil {
		return
	}
	q.events = append(q.events, e)
	if !q.running {
		q.running = true
		go q.run()
	}
}

func (q *presenceQueue) run() {
	for {
		q.mu.Lock()
		if len(q.events) == 0 {
			q.events = nil
			q.running = false
			q.mu.Unlock()
			return
		}
		e := q.events[0]
		q.events = q.events[1:]
		fn := q.fn
		q.mu.Unlock()
		fn(e)
	}
}
