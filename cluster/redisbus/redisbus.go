package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/internal/delivery"
)

// SubscriberQueue is how many messages a subscription holds while its fn
// is busy; more are dropped for it and counted by Dropped.
const SubscriberQueue = 1 << 16

// closeTimeout bounds how long Close, and a Subscription's Close, wait for
// Redis to confirm that their channels are unsubscribed.
const closeTimeout = 5 * time.Second

// Options configures a Bus. A nil *Options means the defaults; New does
// not change the caller's struct.
type Options struct {
	// Prefix is the hash tag in front of every channel name, "{Prefix}.",
	// so that several Tether clusters can share one Redis: give each its
	// own. It may hold ASCII letters, digits and "-_.". Default "tether".
	Prefix string
	// MaxPayload is the most bytes one message, request or reply may
	// carry (Bus.MaxPayload); the envelope a request or reply travels in
	// comes on top. Default cluster.DefaultMaxPayload (1 MiB less 256
	// bytes, what natsbus reports with nats-server's default limit), so
	// that a cluster can move from one engine to the other. Redis itself
	// accepts up to 512 MiB, but a subscriber's connection is cut when it
	// falls 8 MiB behind for a minute (client-output-buffer-limit pubsub).
	MaxPayload int
	// Logger receives a Warn for each malformed message dropped and each
	// lost connection to Redis. Default slog.Default().
	Logger *slog.Logger
}

// Bus is a cluster.Bus on Redis. Make one per node with New; all methods
// may be called concurrently.
type Bus struct {
	client     redis.UniversalClient
	ps         *redis.PubSub // the connection the loop reads
	pubPrefix  string        // "{tether}.pub."
	reqPrefix  string        // "{tether}.req."
	replyTo    string        // this bus's reply channel
	replyPre   string        // "{tether}.reply.", every bus's reply channel's prefix
	maxPayload int
	log        *slog.Logger

	ctx    context.Context // ends at Close: handlers' contexts, pending Requests, the loop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the loop, subscriptions' queues, handler calls; Add only under mu while !closed

	nextID    atomic.Uint64 // of requests
	nextPing  atomic.Uint64 // of barriers
	dropped   atomic.Int64
	malformed atomic.Int64

	// cmdMu orders the SSUBSCRIBE and SUNSUBSCRIBE commands with the
	// changes of subs and servers they follow. Held before mu.
	cmdMu sync.Mutex

	mu      sync.Mutex
	closed  bool                                  // guarded by mu
	subs    map[string]map[*subscription]struct{} // by channel; guarded by mu
	servers map[string]*server                    // by channel; guarded by mu
	pending map[uint64]chan reply                 // by request id; guarded by mu
	pings   map[string]chan struct{}              // barriers by token; guarded by mu
	broken  chan struct{}                         // closed when the connection fails, then replaced; guarded by mu
}

// New returns a Bus on client, with its reply channel subscribed. The
// application keeps client: Close does not close it. New returns an error
// wrapping cluster.ErrUnavailable when Redis cannot be reached within 10 s,
// and an error for a Prefix that breaks its rule.
func New(client redis.UniversalClient, opts *Options) (*Bus, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = "tether"
	}
	if !cluster.ValidSubject(o.Prefix) {
		return nil, fmt.Errorf("redisbus: invalid Prefix %q (ASCII letters, digits, \"-_.\" and no empty element)", o.Prefix)
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = cluster.DefaultMaxPayload
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var id [12]byte
	rand.Read(id[:])
	tag := "{" + o.Prefix + "}."
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bus{
		client:     client,
		pubPrefix:  tag + "pub.",
		reqPrefix:  tag + "req.",
		replyTo:    tag + "reply." + hex.EncodeToString(id[:]),
		replyPre:   tag + "reply.",
		maxPayload: o.MaxPayload,
		log:        o.Logger,
		ctx:        ctx,
		cancel:     cancel,
		subs:       make(map[string]map[*subscription]struct{}),
		servers:    make(map[string]*server),
		pending:    make(map[uint64]chan reply),
		pings:      make(map[string]chan struct{}),
		broken:     make(chan struct{}),
	}
	start, cancelStart := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelStart()
	// The first SSUBSCRIBE makes the connection: on a Redis Cluster, to
	// the shard that owns the prefix's slot.
	b.ps = client.SSubscribe(start, b.replyTo)
	b.wg.Add(1)
	go b.receive()
	if err := b.barrier(start); err != nil {
		err = b.unavailable(start, err)
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("redisbus: %w: no answer within 10 s", cluster.ErrUnavailable)
		}
		b.Close()
		return nil, err
	}
	return b, nil
}

// check returns the error a method returns before it does anything.
func (b *Bus) check(ctx context.Context, subject string, data []byte) error {
	if b.ctx.Err() != nil {
		return cluster.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !cluster.ValidSubject(subject) {
		return fmt.Errorf("redisbus: invalid subject %q", subject)
	}
	if len(data) > b.maxPayload {
		return cluster.ErrTooBig
	}
	return nil
}

// unavailable returns the error for err, which a command to Redis
// returned: ctx's error when ctx ended, cluster.ErrClosed after Close, and
// otherwise an error wrapping both cluster.ErrUnavailable and err.
func (b *Bus) unavailable(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, cluster.ErrClosed), errors.Is(err, cluster.ErrUnavailable):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case b.ctx.Err() != nil:
		return cluster.ErrClosed
	}
	return fmt.Errorf("redisbus: %w: %w", cluster.ErrUnavailable, err)
}

// Publish sends data to the subscribers of subject with one SPUBLISH. It
// returns cluster.ErrTooBig for data over MaxPayload, cluster.ErrClosed
// after Close, ctx's error when ctx ends first, an error wrapping
// cluster.ErrUnavailable when Redis cannot be reached, and an error for an
// invalid subject.
func (b *Bus) Publish(ctx context.Context, subject string, data []byte) error {
	if err := b.check(ctx, subject, data); err != nil {
		return err
	}
	if err := b.client.SPublish(ctx, b.pubPrefix+subject, data).Err(); err != nil {
		return b.unavailable(ctx, err)
	}
	return nil
}

// Subscribe calls fn with each message published to subject from the
// moment Redis confirmed the subscription, before Subscribe returns. It
// returns cluster.ErrClosed after Close, ctx's error when ctx ends before
// Redis confirmed, an error wrapping cluster.ErrUnavailable when Redis
// cannot be reached, and an error for an invalid subject.
func (b *Bus) Subscribe(ctx context.Context, subject string, fn func(data []byte)) (cluster.Subscription, error) {
	if err := b.check(ctx, subject, nil); err != nil {
		return nil, err
	}
	channel := b.pubPrefix + subject
	s := &subscription{bus: b, channel: channel}
	b.cmdMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return nil, cluster.ErrClosed
	}
	first := len(b.subs[channel]) == 0
	if first {
		b.subs[channel] = make(map[*subscription]struct{})
	}
	b.subs[channel][s] = struct{}{}
	b.wg.Add(1)
	s.queue = delivery.Start(fn, SubscriberQueue, &b.wg)
	b.mu.Unlock()
	var err error
	if first {
		err = b.ps.SSubscribe(ctx, channel)
	}
	b.cmdMu.Unlock()
	if err == nil {
		err = b.barrier(ctx)
	}
	if err != nil {
		s.Close()
		return nil, b.unavailable(ctx, err)
	}
	return s, nil
}

// MaxPayload returns Options.MaxPayload.
func (b *Bus) MaxPayload() int { return b.maxPayload }

// Dropped returns how many messages subscriptions of b missed because
// their queue was full.
func (b *Bus) Dropped() int64 { return b.dropped.Load() }

// Malformed returns how many messages b dropped on its request and reply
// channels because they were not well-formed envelopes.
func (b *Bus) Malformed() int64 { return b.malformed.Load() }

// Close ends every subscription and handler of b (handlers' contexts end;
// Close waits for the calls of fn and handle in progress to return, so they
// must not call it), fails b's pending Requests with cluster.ErrClosed,
// unsubscribes b's channels, waiting up to 5 s for Redis to confirm (so
// that Requests from other nodes get cluster.ErrNoResponders once Close
// has returned), and closes b's pub/sub connection. It does not close the
// client. Closing again does nothing.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	for _, subs := range b.subs {
		for s := range subs {
			s.queue.Stop()
		}
	}
	for _, srv := range b.servers {
		srv.cancel()
	}
	clear(b.subs)
	clear(b.servers)
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(b.ctx, closeTimeout)
	defer cancel()
	b.cmdMu.Lock()
	err := b.ps.SUnsubscribe(ctx)
	b.cmdMu.Unlock()
	if err == nil {
		b.barrier(ctx)
	}
	b.cancel()
	b.ps.Close()
	b.wg.Wait()
	return nil
}

// subscription is what Subscribe returns.
type subscription struct {
	bus     *Bus
	channel string
	queue   *delivery.Queue // set under bus.mu before the subscription is seen
}

// Close ends the subscription: fn is not called for messages that arrive
// after Close returned. It does not wait for a call of fn in progress, so
// fn may call it.
func (s *subscription) Close() error {
	b := s.bus
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	subs := b.subs[s.channel]
	if _, ok := subs[s]; !ok {
		b.mu.Unlock()
		return nil
	}
	delete(subs, s)
	last := len(subs) == 0
	if last {
		delete(b.subs, s.channel)
	}
	s.queue.Stop()
	b.mu.Unlock()
	if last {
		ctx, cancel := context.WithTimeout(b.ctx, closeTimeout)
		defer cancel()
		b.ps.SUnsubscribe(ctx, s.channel) // Redis down: it forgot the subscription already
	}
	return nil
}
