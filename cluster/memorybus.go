package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetherkit/tether/cluster/internal/delivery"
)

// DefaultMaxPayload is the payload limit of a MemoryBus unless its
// MaxPayload is set: 1 MiB less 256 bytes, what package natsbus reports
// with nats-server's default max_payload (the 256 bytes are the room
// natsbus keeps for its headers), so code tested on a MemoryBus meets the
// limit it meets in production.
const DefaultMaxPayload = 1<<20 - 256

// MemorySubscriberQueue is how many messages a subscription of a MemoryBus
// holds while its fn is busy. A message published to a subscription whose
// queue is full is dropped for that subscription alone and counted by
// Dropped, as the real engines drop for a subscriber that falls behind
// (delivery is at most once).
const MemorySubscriberQueue = 1 << 16

// MemoryBus joins the nodes of a cluster that run in one process: tests,
// examples, and a cluster of servers in one program. Each node gets its own
// connection from Connect; what one connection publishes reaches the
// subscribers of every connection, and what it requests reaches the handler
// another connection serves.
//
// Closing a connection makes its subscriptions and handlers vanish at once,
// which is what a killed node looks like to the others: Requests to its
// subjects get ErrNoResponders, and a reply its handler was still working on
// is never delivered (the requester's context ends, as when a node dies
// with a request in hand). A MemoryBus needs no Close of its own: it holds
// nothing but its connections. All methods may be called concurrently.
type MemoryBus struct {
	// MaxPayload is the limit that connections made by later calls of
	// Connect report and enforce (Bus.MaxPayload). NewMemoryBus sets
	// DefaultMaxPayload; set it before calling Connect.
	MaxPayload int

	dropped atomic.Int64

	mu          sync.Mutex
	subscribers map[string]map[*memorySubscription]struct{} // by subject; guarded by mu
	servers     map[string][]*memoryServer                  // by subject, oldest first; guarded by mu
}

// NewMemoryBus returns a MemoryBus with no connections and a MaxPayload of
// DefaultMaxPayload.
func NewMemoryBus() *MemoryBus {
	return &MemoryBus{
		MaxPayload:  DefaultMaxPayload,
		subscribers: make(map[string]map[*memorySubscription]struct{}),
		servers:     make(map[string][]*memoryServer),
	}
}

// Connect returns a new connection to b: a Bus of its own that a node uses
// and closes. Its Close waits for the calls of fn and handle in progress to
// return (their contexts end at once), so fn and handle must not call it.
func (b *MemoryBus) Connect() Bus {
	ctx, cancel := context.WithCancel(context.Background())
	return &memoryConn{
		bus:        b,
		maxPayload: b.MaxPayload,
		ctx:        ctx,
		cancel:     cancel,
		served:     make(map[string]*memoryServer),
		subs:       make(map[*memorySubscription]struct{}),
	}
}

// Dropped returns how many messages the subscriptions of b's connections
// have missed because their queue (MemorySubscriberQueue messages) was full.
func (b *MemoryBus) Dropped() int64 {
	return b.dropped.Load()
}

// memoryConn is one connection to a MemoryBus: the Bus a node uses.
type memoryConn struct {
	bus        *MemoryBus
	maxPayload int
	ctx        context.Context // ends at Close: handlers' contexts and pending Requests
	cancel     context.CancelFunc
	wg         sync.WaitGroup // delivery goroutines and handler calls; Add only under bus.mu while !closed

	// Guarded by bus.mu.
	closed bool
	served map[string]*memoryServer
	subs   map[*memorySubscription]struct{}
}

// check returns the error a method returns before it does anything: ErrClosed
// after Close, ctx's error when ctx has ended, ErrTooBig for data over the
// limit, or an error for a subject that breaks the Bus's rules.
func (c *memoryConn) check(ctx context.Context, subject string, data []byte) error {
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !ValidSubject(subject) {
		return fmt.Errorf("cluster: invalid subject %q", subject)
	}
	if len(data) > c.maxPayload {
		return ErrTooBig
	}
	return nil
}

// Publish queues a copy of data for every current subscriber of subject on
// every connection of the bus.
func (c *memoryConn) Publish(ctx context.Context, subject string, data []byte) error {
	if err := c.check(ctx, subject, data); err != nil {
		return err
	}
	b := c.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	for s := range b.subscribers[subject] {
		if !s.queue.Push(append([]byte(nil), data...)) {
			b.dropped.Add(1)
		}
	}
	return nil
}

// Subscribe registers fn for subject; the subscription is active when it
// returns.
func (c *memoryConn) Subscribe(ctx context.Context, subject string, fn func(data []byte)) (Subscription, error) {
	if err := c.check(ctx, subject, nil); err != nil {
		return nil, err
	}
	s := &memorySubscription{conn: c, subject: subject}
	b := c.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if b.subscribers[subject] == nil {
		b.subscribers[subject] = make(map[*memorySubscription]struct{})
	}
	b.subscribers[subject][s] = struct{}{}
	c.subs[s] = struct{}{}
	c.wg.Add(1)
	s.queue = delivery.Start(fn, MemorySubscriberQueue, &c.wg)
	return s, nil
}

// Request hands a copy of data to the oldest handler serving subject and
// waits for its reply.
func (c *memoryConn) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if err := c.check(ctx, subject, data); err != nil {
		return nil, err
	}
	replies := make(chan memoryReply, 1)
	if err := c.bus.startRequest(ctx, subject, append([]byte(nil), data...), replies); err != nil {
		return nil, err
	}
	select {
	case r := <-replies:
		if r.tooBig {
			return nil, ErrTooBig
		}
		return r.data, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, ErrClosed
	}
}

// startRequest starts the call of the handler serving subject on a
// goroutine of the handler's connection. It returns ErrNoResponders when
// no connection serves subject.
func (b *MemoryBus) startRequest(ctx context.Context, subject string, data []byte, replies chan<- memoryReply) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	servers := b.servers[subject]
	if len(servers) == 0 {
		return ErrNoResponders
	}
	srv := servers[0]
	srv.conn.wg.Add(1)
	go srv.call(ctx, data, replies)
	return nil
}

// Serve registers handle for subject.
func (c *memoryConn) Serve(ctx context.Context, subject string, handle func(ctx context.Context, data []byte) []byte) (Subscription, error) {
	if err := c.check(ctx, subject, nil); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(c.ctx)
	srv := &memoryServer{conn: c, subject: subject, handle: handle, ctx: sctx, cancel: cancel}
	b := c.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		cancel()
		return nil, ErrClosed
	}
	if c.served[subject] != nil {
		cancel()
		return nil, ErrServed
	}
	c.served[subject] = srv
	b.servers[subject] = append(b.servers[subject], srv)
	return srv, nil
}

// MaxPayload returns the limit the MemoryBus had when Connect made c.
func (c *memoryConn) MaxPayload() int {
	return c.maxPayload
}

// Close removes c's subscriptions and handlers from the bus, fails c's
// pending Requests with ErrClosed, ends the contexts of c's handlers, and
// waits for the calls of fn and handle in progress to return.
func (c *memoryConn) Close() error {
	b := c.bus
	b.mu.Lock()
	if c.closed {
		b.mu.Unlock()
		c.wg.Wait()
		return nil
	}
	c.closed = true
	for s := range c.subs {
		b.removeSubscription(s)
	}
	for _, srv := range c.served {
		b.removeServer(srv)
	}
	b.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// removeSubscription takes s off the bus and ends its delivery goroutine.
// Called with b.mu held.
func (b *MemoryBus) removeSubscription(s *memorySubscription) {
	if _, ok := s.conn.subs[s]; !ok {
		return
	}
	delete(s.conn.subs, s)
	delete(b.subscribers[s.subject], s)
	if len(b.subscribers[s.subject]) == 0 {
		delete(b.subscribers, s.subject)
	}
	s.queue.Stop()
}

// removeServer takes srv off the bus and ends its handlers' contexts.
// Called with b.mu held.
func (b *MemoryBus) removeServer(srv *memoryServer) {
	if srv.conn.served[srv.subject] != srv {
		return
	}
	delete(srv.conn.served, srv.subject)
	servers := b.servers[srv.subject]
	for i, other := range servers {
		if other == srv {
			servers = append(servers[:i:i], servers[i+1:]...)
			break
		}
	}
	if len(servers) == 0 {
		delete(b.servers, srv.subject)
	} else {
		b.servers[srv.subject] = servers
	}
	srv.cancel()
}

// memorySubscription is a Subscribe's registration.
type memorySubscription struct {
	conn    *memoryConn
	subject string
	queue   *delivery.Queue
}

// Close takes the subscription off the bus. It does not wait for a call of
// fn in progress, so fn may call it.
func (s *memorySubscription) Close() error {
	b := s.conn.bus
	b.mu.Lock()
	b.removeSubscription(s)
	b.mu.Unlock()
	return nil
}

// memoryServer is a Serve's registration.
type memoryServer struct {
	conn    *memoryConn
	subject string
	handle  func(ctx context.Context, data []byte) []byte
	ctx     context.Context // ends when the server or its connection closes
	cancel  context.CancelFunc
}

// memoryReply is what a handler's call hands back to the requester.
type memoryReply struct {
	data   []byte
	tooBig bool
}

// call runs handle for one request with the requester's deadline and
// hands its reply back, unless the server has closed meanwhile (its node is
// gone: the reply is lost, as on a real engine) or the deadline has passed
// (nobody waits for the reply).
func (srv *memoryServer) call(reqCtx context.Context, data []byte, replies chan<- memoryReply) {
	defer srv.conn.wg.Done()
	ctx, cancel := srv.ctx, context.CancelFunc(func() {})
	if deadline, ok := reqCtx.Deadline(); ok {
		ctx, cancel = context.WithDeadline(ctx, deadline)
	}
	defer cancel()
	reply := srv.handle(ctx, data)
	if ctx.Err() != nil {
		return // past the requester's deadline, or the server is gone
	}
	if len(reply) > srv.conn.maxPayload {
		replies <- memoryReply{tooBig: true}
		return
	}
	replies <- memoryReply{data: append([]byte{}, reply...)}
}

// Close takes the handler off the bus and ends the contexts of its calls in
// progress. It does not wait for them, so handle may call it.
func (srv *memoryServer) Close() error {
	b := srv.conn.bus
	b.mu.Lock()
	b.removeServer(srv)
	b.mu.Unlock()
	return nil
}
