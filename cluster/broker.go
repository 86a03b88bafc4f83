package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/internal/subscribers"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Defaults of BrokerOptions.
const (
	DefaultHeartbeatInterval = time.Second
	DefaultNodeTimeout       = 5 * time.Second
)

var (
	// ErrInvalidNodeID is returned by NewBroker for a node id that is not
	// 1 to MaxNodeIDBytes ASCII letters, digits, '-' and '_'.
	ErrInvalidNodeID = errors.New("cluster: invalid node id")
	// ErrInvalidSessionID is returned by Broker.Subscribe for a subscriber
	// whose ID is empty or longer than 255 bytes: such an id could not
	// travel to the other nodes. Tether's session ids are far shorter. A
	// StateStore returns it for an id it cannot store (package
	// redisstate: empty, over redisstate.MaxIDBytes, or with a byte
	// outside printable ASCII or one of "{}").
	ErrInvalidSessionID = errors.New("cluster: invalid session id")
)

// BrokerOptions configure a Broker. A nil *BrokerOptions means every
// default; NewBroker keeps a copy.
type BrokerOptions struct {
	// MaxMessageBytes is the largest message data Publish takes and the
	// largest a node accepts from the bus: give every node of a cluster
	// the same value, no less than its Server's Options.MaxMessageBytes
	// (a Node gives its own MaxMessageBytes). Default 64 KiB
	// (session.DefaultMaxMessageBytes).
	MaxMessageBytes int
	// HeartbeatInterval is how often the node tells the others, on the
	// subject "tether.nodes", that it is alive and how many presence
	// events it has had. Default 1s (DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration
	// NodeTimeout is how long a node may go unheard before the others
	// take it for gone: its subscribers leave their topics' presence, with
	// Left events. A NodeTimeout not above twice HeartbeatInterval is
	// raised to that. Default 5s (DefaultNodeTimeout).
	NodeTimeout time.Duration
	// Logger receives the broker's warnings: malformed messages from the
	// bus, presence events or heartbeats the bus would not take, snapshots
	// that could not be fetched, topic gaps. Default slog.Default().
	Logger *slog.Logger
	// History, if set, numbers every publish per topic and keeps it for a
	// while (package redisstate's TopicHistory), so that what the bus
	// loses is fetched from it and no subscriber misses a message
	// silently (see Broker). Give every node of a cluster the same
	// History, or none. Default: none.
	History History
	// GapWait is how long, with a History, a node waits for a message
	// missing in a topic's offsets before it fetches it from the History
	// (messages of several publishers may come in another order than
	// their offsets for a moment). Default 200ms (DefaultGapWait).
	GapWait time.Duration
}

func (o *BrokerOptions) withDefaults() BrokerOptions {
	var c BrokerOptions
	if o != nil {
		c = *o
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = session.DefaultMaxMessageBytes
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = DefaultNodeTimeout
	}
	c.NodeTimeout = max(c.NodeTimeout, 2*c.HeartbeatInterval)
	if c.GapWait <= 0 {
		c.GapWait = DefaultGapWait
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Broker is a broker.Broker for one node of a cluster: what is published on
// any node reaches the subscribers of every node, and presence lists the
// subscribers of every node that is alive.
//
// # Publish
//
// A publish is delivered at once to the node's own subscribers, with
// broker.Fanout (one Delivery, its frames built once per framing), then
// sent once on the bus on the topic's subject ("tether.topic." and the
// topic's name in base64url), which every node with subscribers to the
// topic listens to; each delivers it to its own subscribers, one Delivery
// per node, and the publishing node ignores its own message coming back.
// PublishOptions.Exclude travels with the message. A subscriber receives
// each publish once, in the order of one publisher's calls.
//
// A node listens to a topic's subject while it has subscribers to it:
// Subscribe returns once the bus subscription is active, so whatever is
// published after Subscribe returned, on any node, reaches the new
// subscriber. The bus delivers at most once: a publish the bus loses (its
// engine restarted) is lost for the other nodes' subscribers, like a
// message a session never queued; what a session queued is replayed as
// always.
//
// # History
//
// With a History (BrokerOptions.History), no subscriber misses a message
// silently, even when the bus loses it. Publish first appends the message
// to the History, which gives it its offset in the topic (1, 2, 3...,
// whichever node publishes: one round trip), and the offset travels with
// it on the bus. Each node delivers a topic's messages to its subscribers
// in offset order, each once, with the offset (broker.Delivery.Offset): a
// message that comes before one with a lower offset waits for it, for
// GapWait at most; then the missing ones are fetched from the History. A
// message lost at the end (none came after it) is found by the check each
// node makes every HeartbeatInterval of the last offset of every topic it
// listens to (one round trip for all of them), and fetched. When the
// History no longer holds what is missing (trimmed, expired, lost), or
// cannot be reached for NodeTimeout, the topic's subscribers on the node
// are closed (broker.GapCloser: package tether closes the session with
// 4000 and the reason "topic gap", broker.GapReason), counted in BrokerStats.Gaps
// and logged. A Subscribe that makes the node listen to a topic reads the
// topic's last offset (one more round trip): the subscribers receive what
// is appended after it. A subscriber that continues a subscription it had
// on another node (broker.Resumable: a durable session taken over) first
// receives from the History, within Subscribe, the messages after the
// offset it had reached, and then the later ones, each once, in order; or
// is closed as on a gap when the History no longer holds them (or holds
// them corrupt). When the History cannot be reached, or answers too
// slowly, for NodeTimeout, nothing is lost yet: Subscribe fails, the
// subscriber not subscribed and given nothing, and the takeover fails, to
// be tried again (package cluster's doc, Durable sessions). A publish fails, reaching nobody, when the History
// cannot take it; one the bus would not take is in the History, and the
// other nodes fetch it.
//
// A message received from the bus is checked before anything is
// delivered: a well-formed publish, of a valid topic matching its subject,
// a message type Send accepts, at most MaxMessageBytes of data. Anything
// else is dropped, counted (BrokerStats.Malformed) and logged.
//
// # Presence
//
// Each node numbers its presence events (joins and leaves) and publishes
// them on "tether.presence"; every node keeps the members of the others
// from them, and reports them through OnPresence, in order per node. A node
// that misses an event (a gap in the numbers, or a heartbeat announcing an
// event that has not come) or hears of a node for the first time fetches
// that node's snapshot, by requests on "tether.presence.<node id>", in
// pages that fit the bus's MaxPayload, and reports the difference as joins
// and leaves. Every node publishes a heartbeat on "tether.nodes" every
// HeartbeatInterval; a node not heard from for NodeTimeout is gone, and its
// members leave (Left events). A node that closes its Broker says goodbye,
// and its members leave at once.
//
// While the bus is down, a node hears nobody: after NodeTimeout, its
// Presence lists only its own subscribers, and the others' leave (Left
// events); the other nodes see the same of it. When the bus returns, the
// heartbeats bring the snapshots, and the members of every node join again
// (Joined events). Events are not replayed: presence converges to what is
// true now.
//
// All methods may be called concurrently.
type Broker struct {
	bus  Bus
	id   string
	opts BrokerOptions
	// check checks messages as Send would, against MaxMessageBytes.
	check session.Config

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the broker's goroutines
	own    []Subscription // the presence, membership and snapshot subjects

	mu     sync.RWMutex
	closed bool                   // guarded by mu
	topics map[string]*topic      // guarded by mu; a topic is removed when idle
	seq    uint64                 // guarded by mu; this node's presence events so far
	outbox []presenceEvent        // guarded by mu; events for the bus, oldest first
	nodes  map[string]*remoteNode // guarded by mu; the other nodes heard from
	// departed holds the nodes that said goodbye, and when: what still
	// comes from them (an event overtaken by the goodbye) is ignored.
	departed map[string]time.Time // guarded by mu

	outboxReady chan struct{} // a value when outbox has events
	published   atomic.Uint64 // seq of the last event handed to the bus
	notes       notifier

	malformed atomic.Uint64
	gaps      atomic.Uint64
	fetched   atomic.Uint64
	snapshots atomic.Uint64
	nodesGone atomic.Uint64
	warned    atomic.Int64 // unix nanoseconds of the last rate-limited warning
}

// topic is one topic's subscribers on this node and its bus subscription.
type topic struct {
	name    string
	subject string
	// gate is held (a value in it) by the one goroutine that may make or
	// close the bus subscription.
	gate chan struct{}
	bus  Subscription // guarded by gate; nil while not subscribed

	// subs holds the local members by session id, in the order they
	// subscribed (guarded by Broker.mu).
	subs    subscribers.Set[string, localMember]
	pending int // guarded by Broker.mu; Subscribes under way
	// list is subs' Subscribers, in subs' order, for deliveries to range
	// over without a lock: built under Broker.mu's read lock, set to nil
	// under its write lock when subs changes.
	list atomic.Pointer[[]broker.Subscriber]
	// seq orders deliveries by offset, with a History.
	seq sequence
}

type localMember struct {
	sub  broker.Subscriber
	info []byte
}

var _ broker.Broker = (*Broker)(nil)

// NewBroker returns the Broker of the node nodeID on bus. The node's id
// must be unique among the live nodes on the bus and is best new on every
// start (Node's ids are); a second Broker of one node id on one Bus value
// gets ErrServed. NewBroker subscribes the presence and membership
// subjects and serves the node's snapshot subject, bounded by NodeTimeout;
// it returns ErrInvalidNodeID for an invalid id, and the bus's error.
// Close the Broker when done: it does not close bus.
func NewBroker(bus Bus, nodeID string, opts *BrokerOptions) (*Broker, error) {
	if bus == nil {
		return nil, errors.New("cluster: NewBroker needs a Bus")
	}
	if err := checkNodeID(nodeID); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	b := &Broker{
		bus:         bus,
		id:          nodeID,
		opts:        o,
		check:       session.Config{MaxMessageBytes: o.MaxMessageBytes},
		topics:      make(map[string]*topic),
		nodes:       make(map[string]*remoteNode),
		departed:    make(map[string]time.Time),
		outboxReady: make(chan struct{}, 1),
		notes:       notifier{ready: make(chan struct{}, 1)},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(b.ctx, o.NodeTimeout)
	defer cancel()
	for _, open := range []func() (Subscription, error){
		func() (Subscription, error) { return bus.Serve(ctx, snapshotSubject(nodeID), b.serveSnapshot) },
		func() (Subscription, error) { return bus.Subscribe(ctx, presenceSubject, b.receiveMembership) },
		func() (Subscription, error) { return bus.Subscribe(ctx, nodesSubject, b.receiveMembership) },
	} {
		s, err := open()
		if err != nil {
			for _, s := range b.own {
				s.Close()
			}
			b.cancel()
			return nil, fmt.Errorf("cluster: broker of node %s: %w", nodeID, err)
		}
		b.own = append(b.own, s)
	}
	b.wg.Go(b.sendEvents)
	b.wg.Go(func() { b.notes.run(b.ctx.Done()) })
	b.wg.Go(b.beat)
	if o.History != nil {
		b.wg.Go(b.watchHeads)
	}
	return b, nil
}

// ID returns the node's id, as NewBroker was given it.
func (b *Broker) ID() string { return b.id }

// Subscribe implements broker.Broker. It returns once the node listens to
// topic's subject on the bus, which it waits for until ctx ends, or for 30
// seconds at most when ctx has no deadline. Besides the errors of
// broker.Broker, it returns ErrInvalidSessionID for a subscriber whose ID
// could not travel to the other nodes, an error wrapping ErrTooBig when
// info is too big for a presence event on the bus, the bus's error when it
// could not subscribe, and ErrClosed after Close; Subscribe has then
// changed nothing. For a subscriber that continues a subscription
// (broker.Resumable) it returns an error wrapping the History's when the
// History could not give what the subscriber missed but has not lost it
// (it could not be reached, or answered too slowly, for NodeTimeout, or ctx
// ended): the subscriber has received nothing, is not subscribed (its
// presence saw it join and leave); a takeover that meets it fails and is
// tried again. When the History no longer holds them, the subscriber is closed
// (broker.GapCloser) and Subscribe returns as it would otherwise.
func (b *Broker) Subscribe(ctx context.Context, name string, sub broker.Subscriber, info []byte) (bool, error) {
	if err := broker.CheckTopic(name); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	id := sub.ID()
	if id == "" || len(id) > maxSessionBytes {
		return false, fmt.Errorf("%w: %d bytes, want 1 to %d", ErrInvalidSessionID, len(id), maxSessionBytes)
	}
	entry := snapshotEntry{topic: name, member: broker.Member{Session: id, Info: info}}
	if need := max(pageOverhead+entryBytes(&entry), 16+MaxNodeIDBytes+entryBytes(&entry)); need > b.bus.MaxPayload() {
		return false, fmt.Errorf("%w: info of %d bytes needs %d on the bus, over its %d", ErrTooBig, len(info), need, b.bus.MaxPayload())
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false, ErrClosed
	}
	t := b.topics[name]
	if t == nil {
		t = &topic{name: name, subject: topicSubject(name), gate: make(chan struct{}, 1)}
		b.topics[name] = t
	}
	if _, ok := t.subs.Get(id); ok {
		b.mu.Unlock()
		return false, nil
	}
	t.pending++
	b.mu.Unlock()

	select {
	case t.gate <- struct{}{}:
	case <-ctx.Done():
		b.mu.Lock()
		t.pending--
		idle := b.takeIfIdle(t)
		b.mu.Unlock()
		if idle {
			b.release(t)
		}
		return false, ctx.Err()
	}
	var err error
	if t.bus == nil {
		b.mu.RLock()
		closed := b.closed
		b.mu.RUnlock()
		if closed {
			err = ErrClosed
		} else if t.bus, err = b.subscribeBus(ctx, t); err != nil {
			t.bus = nil
			err = fmt.Errorf("cluster: subscribe to topic %q on the bus: %w", name, err)
		}
	}
	// With a History, the subscriber joins under t.seq.mu, which every
	// delivery holds: it receives exactly the messages after the offset
	// delivered last here (start).
	numbered := err == nil && b.opts.History != nil
	member, c := sub, (*catchUp)(nil)
	if numbered {
		if c = resumeOf(name, sub); c != nil {
			member = c
		}
		t.seq.mu.Lock()
	}
	joined := false
	b.mu.Lock()
	t.pending--
	if err == nil && b.closed {
		err = ErrClosed
	}
	if _, ok := t.subs.Get(id); !ok && err == nil {
		info = slices.Clone(info)
		t.subs.Add(id, localMember{sub: member, info: info})
		t.list.Store(nil)
		b.localEvent(broker.Joined, name, broker.Member{Session: id, Info: info})
		joined = true
	}
	b.mu.Unlock()
	var start uint64
	started := false
	if numbered {
		start, started = t.seq.next-1, t.seq.started
		t.seq.mu.Unlock()
	}
	b.release(t)
	if joined && numbered {
		if err := b.position(ctx, name, sub, c, start, started); err != nil {
			b.undoJoin(t, id, member)
			return false, err
		}
	}
	return joined, err
}

// undoJoin takes member, joined to t as session id by a Subscribe that
// fails, out of t's subscribers again: the node stops listening to t when
// it was the last. Its presence has seen it join, and sees it leave.
func (b *Broker) undoJoin(t *topic, id string, member broker.Subscriber) {
	b.mu.Lock()
	m, ok := t.subs.Get(id)
	if !ok || m.sub != member {
		b.mu.Unlock()
		return
	}
	t.subs.Remove(id)
	t.list.Store(nil)
	b.localEvent(broker.Left, t.name, broker.Member{Session: id, Info: m.info})
	idle := b.takeIfIdle(t)
	b.mu.Unlock()
	if idle {
		b.release(t)
	}
}

// subscribeBus subscribes t's subject on the bus (see bounded) and, with a
// History, starts t's delivery after the topic's last offset. The caller
// holds t's gate.
func (b *Broker) subscribeBus(ctx context.Context, t *topic) (Subscription, error) {
	ctx, cancel := b.bounded(ctx)
	defer cancel()
	gen := t.seq.restart()
	sub, err := b.bus.Subscribe(ctx, t.subject, b.receiver(t))
	if err != nil || b.opts.History == nil {
		return sub, err
	}
	heads, err := b.opts.History.Heads(ctx, []string{t.name})
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("reading its history: %w", err)
	}
	b.startSequence(t, gen, heads[0])
	return sub, nil
}

// maxBusWait bounds a Subscribe's or Publish's wait for the bus when their
// context has no deadline: an engine that cannot be reached does not hold
// them for ever.
const maxBusWait = 30 * time.Second

// bounded returns ctx, or ctx bounded by maxBusWait when it has no
// deadline.
func (b *Broker) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, maxBusWait)
}

// takeIfIdle takes t's gate, if it is free, when t has no subscriber and
// none on its way; it reports whether it did, and the caller must then
// call release. It is called with mu held.
func (b *Broker) takeIfIdle(t *topic) bool {
	if t.subs.Len() != 0 || t.pending != 0 || b.closed {
		return false
	}
	select {
	case t.gate <- struct{}{}:
		return true
	default: // the goroutine holding it releases t if idle
		return false
	}
}

// release gives back t's gate, first closing its bus subscription and
// forgetting t when it has no subscriber and none on its way. The caller
// holds the gate.
func (b *Broker) release(t *topic) {
	for {
		b.mu.Lock()
		idle := t.subs.Len() == 0 && t.pending == 0 && !b.closed
		if !idle || t.bus == nil {
			if idle && b.topics[t.name] == t {
				delete(b.topics, t.name)
			}
			<-t.gate
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		t.bus.Close() // not under mu: a bus may wait on the network
		t.bus = nil
	}
}

// Unsubscribe implements broker.Broker. The node stops listening to the
// topic's subject when its last subscriber leaves. After Close, it still
// removes the subscriber from this node's presence.
func (b *Broker) Unsubscribe(ctx context.Context, name, id string) (bool, error) {
	if err := broker.CheckTopic(name); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	b.mu.Lock()
	t := b.topics[name]
	var m localMember
	var ok bool
	if t != nil {
		m, ok = t.subs.Remove(id)
	}
	if !ok {
		b.mu.Unlock()
		return false, nil
	}
	t.list.Store(nil)
	b.localEvent(broker.Left, name, broker.Member{Session: id, Info: m.info})
	idle := b.takeIfIdle(t)
	b.mu.Unlock()
	if idle {
		b.release(t)
	}
	return true, nil
}

// Publish implements broker.Broker: it delivers m to this node's
// subscribers, then sends it once on the bus for the others, waiting for
// the bus until ctx ends, or for 30 seconds at most when ctx has no
// deadline. Besides the
// errors of broker.Broker, it returns wire.ErrMessageTooBig for data over
// MaxMessageBytes and wire.ErrInvalidMessage for a message Send would
// refuse, an error wrapping ErrTooBig when the message with its header
// (the topic, the node's id, the excluded session, the offset: at most
// 464 bytes) is
// over the bus's MaxPayload (nobody receives these), ErrClosed after Close,
// and an error wrapping the bus's when the bus would not take the message:
// this node's subscribers have it then, the other nodes' do not.
func (b *Broker) Publish(ctx context.Context, name string, m wire.Message, opts *broker.PublishOptions) error {
	if err := broker.CheckTopic(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.check.CheckMessage(m); err != nil {
		return err
	}
	var exclude string
	if opts != nil && len(opts.Exclude) <= maxSessionBytes {
		exclude = opts.Exclude // a longer one names no subscriber
	}
	buf := publishBuffers.Get().(*[]byte)
	defer publishBuffers.Put(buf)
	pub := publication{origin: b.id, exclude: exclude, topic: name, message: m}
	if b.opts.History != nil {
		pub.offset = 1 << 63 // the longest an offset takes
	}
	*buf = appendPublication((*buf)[:0], &pub)
	if limit := b.bus.MaxPayload(); len(*buf) > limit {
		return fmt.Errorf("%w: a message of %d bytes takes %d on the bus, over its %d", ErrTooBig, len(m.Data), len(*buf), limit)
	}
	b.mu.RLock()
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	ctx, cancel := b.bounded(ctx)
	defer cancel()
	if b.opts.History != nil {
		return b.publishNumbered(ctx, &pub, buf)
	}
	b.mu.RLock()
	t := b.topics[name]
	b.mu.RUnlock()
	if subs := b.subscribers(t); len(subs) > 0 {
		broker.Fanout(subs, &broker.Delivery{Topic: name, Message: m, Frames: new(wire.Frames)}, exclude)
	}
	if err := b.bus.Publish(ctx, topicSubject(name), *buf); err != nil {
		return fmt.Errorf("cluster: publish to topic %q on the bus: %w", name, err)
	}
	return nil
}

// publishNumbered publishes with a History: the message is appended to it
// first, which gives its offset, then offered to this node's subscribers
// and sent on the bus with its offset. A message the bus would not take is
// in the History: the other nodes fetch it (see Broker); it is logged, and
// Publish returns nil.
func (b *Broker) publishNumbered(ctx context.Context, pub *publication, buf *[]byte) error {
	off, err := b.opts.History.Append(ctx, pub.topic, pub.message, pub.exclude)
	if err != nil {
		return fmt.Errorf("cluster: publish to topic %q: appending to its history: %w", pub.topic, err)
	}
	pub.offset = off
	*buf = appendPublication((*buf)[:0], pub)
	b.mu.RLock()
	t := b.topics[pub.topic]
	b.mu.RUnlock()
	if t != nil {
		b.offer(t, off, pub.message, pub.exclude)
	}
	if err := b.bus.Publish(ctx, topicSubject(pub.topic), *buf); err != nil {
		b.warn("cluster: a numbered publish did not reach the bus; the other nodes fetch it from the history", "topic", pub.topic, "offset", off, "error", err)
	}
	return nil
}

// publishBuffers holds the buffers Publish encodes into: the bus keeps no
// data once Publish returns.
var publishBuffers = sync.Pool{New: func() any { return new([]byte) }}

// subscribers returns t's subscribers on this node, a list nobody changes;
// none for a nil t.
func (b *Broker) subscribers(t *topic) []broker.Subscriber {
	if t == nil {
		return nil
	}
	if l := t.list.Load(); l != nil {
		return *l
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	l := slices.Collect(func(yield func(broker.Subscriber) bool) {
		for _, m := range t.subs.All() {
			if !yield(m.sub) {
				return
			}
		}
	})
	t.list.Store(&l)
	return l
}

// receiver returns the function that takes t's publishes from the bus and
// delivers them to t's subscribers on this node.
func (b *Broker) receiver(t *topic) func([]byte) {
	return func(data []byte) {
		p, err := parsePublication(data)
		if err == nil && p.topic != t.name {
			err = fmt.Errorf("%w: topic %q on the subject of %q", errMalformed, p.topic, t.name)
		}
		if err == nil {
			err = b.check.CheckMessage(p.message)
		}
		if err != nil {
			b.dropMalformed(t.subject, err)
			return
		}
		if p.origin == b.id {
			return // delivered here when published
		}
		if p.offset != 0 && b.opts.History != nil {
			p.message.Data = bytes.Clone(p.message.Data)
			b.offer(t, p.offset, p.message, p.exclude)
			return
		}
		subs := b.subscribers(t)
		if len(subs) == 0 {
			return
		}
		p.message.Data = bytes.Clone(p.message.Data)
		broker.Fanout(subs, &broker.Delivery{Topic: t.name, Message: p.message, Frames: new(wire.Frames)}, p.exclude)
	}
}

// Presence implements broker.Broker: the subscribers of this node and of
// every other node that is alive, as far as this node has heard. It
// returns ErrClosed after Close.
func (b *Broker) Presence(ctx context.Context, name string) ([]broker.Member, error) {
	if err := broker.CheckTopic(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	var members []broker.Member
	if t := b.topics[name]; t != nil {
		for id, m := range t.subs.All() {
			members = append(members, broker.Member{Session: id, Info: m.info})
		}
	}
	for _, n := range b.nodes {
		for id, info := range n.members[name] {
			members = append(members, broker.Member{Session: id, Info: info})
		}
	}
	return members, nil
}

// OnPresence implements broker.Broker: fn hears the joins and leaves of
// this node's subscribers and of every other node's, in order per node.
// A node found gone, or seen again after a bus outage, brings a burst of
// Left or Joined events.
func (b *Broker) OnPresence(fn func(broker.PresenceEvent)) { b.notes.listen(fn) }

// BrokerStats counts what a Broker dropped and repaired.
type BrokerStats struct {
	// Malformed is the number of messages from the bus dropped because
	// they were malformed: not a message of this package, a topic not
	// matching its subject, a message over MaxMessageBytes or of an
	// invalid type.
	Malformed uint64
	// Snapshots is the number of presence snapshots fetched from other
	// nodes: for a node heard of for the first time, or after events
	// were lost.
	Snapshots uint64
	// NodesGone is the number of nodes found gone: unheard for
	// NodeTimeout, or gone with a goodbye.
	NodesGone uint64
	// Fetched is the number of messages fetched from the History, with
	// one: those the bus lost or had not brought within GapWait.
	Fetched uint64
	// Gaps is the number of times, with a History, that a topic's
	// messages could not be delivered in full (the History no longer held
	// them, or could not be reached for NodeTimeout): each time, the
	// topic's subscribers on this node were closed.
	Gaps uint64
}

// Stats returns the broker's counts so far.
func (b *Broker) Stats() BrokerStats {
	return BrokerStats{
		Malformed: b.malformed.Load(), Snapshots: b.snapshots.Load(), NodesGone: b.nodesGone.Load(),
		Fetched: b.fetched.Load(), Gaps: b.gaps.Load(),
	}
}

// dropMalformed counts a malformed message from subject and logs it.
func (b *Broker) dropMalformed(subject string, err error) {
	n := b.malformed.Add(1)
	b.warn("cluster: dropped a malformed message from the bus", "subject", subject, "error", err, "malformed", n)
}

// warn logs a warning, at most one a second: a flood of garbage on the bus,
// or a bus that is down, must not flood the logs.
func (b *Broker) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := b.warned.Load()
	if now-last < int64(time.Second) || !b.warned.CompareAndSwap(last, now) {
		return
	}
	b.opts.Logger.Warn(msg, append(args, "node", b.id)...)
}

// Close says goodbye to the other nodes, ends the broker's subscriptions
// on the bus and its goroutines, and returns once they are over. Later
// Subscribes and Publishes return ErrClosed; Unsubscribe still removes a
// subscriber from this node. Close does not close the Bus; it returns nil
// and may be called more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	topics := slices.Collect(maps.Values(b.topics))
	b.nodes = nil
	b.mu.Unlock()
	b.cancel()
	for _, s := range b.own {
		s.Close()
	}
	for _, t := range topics {
		t.gate <- struct{}{}
		if t.bus != nil {
			t.bus.Close()
			t.bus = nil
		}
		t.seq.restart()
		<-t.gate
	}
	b.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.HeartbeatInterval)
	defer cancel()
	b.bus.Publish(ctx, nodesSubject, appendGoodbye(nil, b.id)) // the others find it gone anyway
	return nil
}
