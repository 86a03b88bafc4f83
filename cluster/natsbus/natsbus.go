package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/cluster"
)

// SubscriberQueue is how many messages a subscription holds while its fn
// is busy (up to 64 MiB); nats.go drops more, counted by Dropped.
const SubscriberQueue = 1 << 16

// subscriberQueueBytes is the byte limit of a subscription's queue.
const subscriberQueueBytes = 64 << 20

// headerRoom is what MaxPayload keeps of the server's limit for the headers
// of a request or reply.
const headerRoom = 256

// closeTimeout bounds how long Close, and a Serve's Subscription's Close,
// wait for the server to confirm that their subscriptions are gone.
const closeTimeout = 5 * time.Second

// Options configures a Bus. A nil *Options means the defaults; New does
// not change the caller's struct.
type Options struct {
	// Prefix is the first element of every subject the Bus uses,
	// "<Prefix>.pub." and "<Prefix>.req.", so that several Tether
	// clusters can share one NATS: give each its own. It may hold ASCII
	// letters, digits and "-_.", with no empty element. Default "tether".
	Prefix string
	// MaxPayload lowers the most bytes one message, request or reply may
	// carry; it cannot exceed, and defaults to, the server's max_payload
	// less 256 bytes.
	MaxPayload int
	// Logger receives a Warn for each malformed request dropped. Default
	// slog.Default().
	Logger *slog.Logger
}

// Bus is a cluster.Bus on a nats.Conn. Make one per node with New; all
// methods may be called concurrently.
type Bus struct {
	nc         *nats.Conn
	pubPrefix  string // "tether.pub."
	reqPrefix  string // "tether.req."
	maxPayload int
	log        *slog.Logger

	ctx    context.Context // ends at Close: handlers' contexts, pending Requests
	cancel context.CancelFunc
	wg     sync.WaitGroup // calls of fn and handle; Add only under mu while !closed

	malformed atomic.Int64

	mu      sync.Mutex
	closed  bool                       // guarded by mu
	subs    map[*subscription]struct{} // guarded by mu
	servers map[string]*server         // by NATS subject; guarded by mu
	dropped int64                      // by subscriptions closed already; guarded by mu
}

// New returns a Bus on nc. The application keeps nc: Close does not close
// it. New returns an error when nc's server does not support headers
// (nats-server before 2.2), and for a Prefix that breaks its rule.
func New(nc *nats.Conn, opts *Options) (*Bus, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = "tether"
	}
	if !cluster.ValidSubject(o.Prefix) {
		return nil, fmt.Errorf("natsbus: invalid Prefix %q (ASCII letters, digits, \"-_.\" and no empty element)", o.Prefix)
	}
	if !nc.HeadersSupported() {
		return nil, errors.New("natsbus: the NATS server does not support headers (nats-server 2.2 or later does)")
	}
	limit := int(nc.MaxPayload()) - headerRoom
	if o.MaxPayload <= 0 || o.MaxPayload > limit {
		o.MaxPayload = limit
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if nc.Opts.MaxReconnect >= 0 {
		o.Logger.Warn("natsbus: the NATS connection stops reconnecting after a while; a cluster node's should not (nats.MaxReconnects(-1))",
			"maxReconnects", nc.Opts.MaxReconnect, "reconnectWait", nc.Opts.ReconnectWait)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Bus{
		nc:         nc,
		pubPrefix:  o.Prefix + ".pub.",
		reqPrefix:  o.Prefix + ".req.",
		maxPayload: o.MaxPayload,
		log:        o.Logger,
		ctx:        ctx,
		cancel:     cancel,
		subs:       make(map[*subscription]struct{}),
		servers:    make(map[string]*server),
	}, nil
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
		return fmt.Errorf("natsbus: invalid subject %q", subject)
	}
	if len(data) > b.maxPayload {
		return cluster.ErrTooBig
	}
	if !b.nc.IsConnected() {
		return b.unavailable(ctx, nats.ErrDisconnected)
	}
	return nil
}

// unavailable returns the error for err, which nats.go returned: ctx's
// error when ctx ended, cluster.ErrClosed after Close, and otherwise an
// error wrapping both cluster.ErrUnavailable and err.
func (b *Bus) unavailable(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case b.ctx.Err() != nil:
		return cluster.ErrClosed
	}
	return fmt.Errorf("natsbus: %w: %w (%s)", cluster.ErrUnavailable, err, b.nc.Status())
}

// flushTimeout bounds how long flush waits for the server when ctx has no
// deadline.
const flushTimeout = 30 * time.Second

// flush waits until the server has handled what nc sent before, within ctx
// (and within flushTimeout when ctx has no deadline).
func (b *Bus) flush(ctx context.Context) error {
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(fctx); err != nil {
		return b.unavailable(ctx, err)
	}
	return nil
}

// Publish sends data to the subscribers of subject as one NATS message. It
// returns cluster.ErrTooBig for data over MaxPayload, cluster.ErrClosed
// after Close, ctx's error when ctx has ended, an error wrapping
// cluster.ErrUnavailable while the connection is down, and an error for an
// invalid subject.
func (b *Bus) Publish(ctx context.Context, subject string, data []byte) error {
	if err := b.check(ctx, subject, data); err != nil {
		return err
	}
	if err := b.nc.Publish(b.pubPrefix+subject, data); err != nil {
		return b.unavailable(ctx, err)
	}
	return nil
}

// enter reports whether a call of fn or handle may start, and counts it
// for Close to wait for: false once b is closed.
func (b *Bus) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

// Subscribe calls fn with each message published to subject from the
// moment the server has the subscription, before Subscribe returns. It
// returns cluster.ErrClosed after Close, ctx's error when ctx ends before
// the server confirmed, an error wrapping cluster.ErrUnavailable while the
// connection is down, and an error for an invalid subject.
func (b *Bus) Subscribe(ctx context.Context, subject string, fn func(data []byte)) (cluster.Subscription, error) {
	if err := b.check(ctx, subject, nil); err != nil {
		return nil, err
	}
	s := &subscription{bus: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, cluster.ErrClosed
	}
	sub, err := b.nc.Subscribe(b.pubPrefix+subject, func(m *nats.Msg) {
		if s.closed.Load() || !b.enter() {
			return
		}
		defer b.wg.Done()
		fn(m.Data)
	})
	if err != nil {
		return nil, b.unavailable(ctx, err)
	}
	sub.SetPendingLimits(SubscriberQueue, subscriberQueueBytes)
	s.sub = sub
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	err = b.flush(ctx)
	b.mu.Lock()
	if err != nil {
		b.unsubscribe(s)
		return nil, err
	}
	return s, nil
}

// MaxPayload returns the limit: the server's max_payload less 256 bytes,
// or Options.MaxPayload when lower.
func (b *Bus) MaxPayload() int { return b.maxPayload }

// Dropped returns how many messages subscriptions of b missed because
// their queue was full.
func (b *Bus) Dropped() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.dropped
	for s := range b.subs {
		if d, err := s.sub.Dropped(); err == nil {
			n += int64(d)
		}
	}
	return n
}

// Malformed returns how many messages b dropped on its request subjects
// because they were not requests.
func (b *Bus) Malformed() int64 { return b.malformed.Load() }

// Close ends every subscription and handler of b (handlers' contexts end;
// Close waits for the calls of fn and handle in progress to return, so they
// must not call it), fails b's pending Requests with cluster.ErrClosed,
// and waits up to 5 s for the server to confirm that b's subscriptions are
// gone (so that Requests from other nodes get cluster.ErrNoResponders once
// Close has returned). It does not close the nats.Conn. Closing again does
// nothing.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	for s := range b.subs {
		b.unsubscribe(s)
	}
	for _, srv := range b.servers {
		srv.sub.Unsubscribe()
		srv.cancel()
	}
	clear(b.servers)
	b.mu.Unlock()
	b.confirm()
	b.cancel()
	b.wg.Wait()
	return nil
}

// confirm waits up to closeTimeout for the server to have handled what nc
// sent before (unsubscriptions). While the connection is down it returns at
// once: the server forgot the connection's subscriptions already.
func (b *Bus) confirm() {
	if !b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	b.nc.FlushWithContext(ctx)
}

// unsubscribe ends s. Called with b.mu held.
func (b *Bus) unsubscribe(s *subscription) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.closed.Store(true)
	if d, err := s.sub.Dropped(); err == nil {
		b.dropped += int64(d)
	}
	s.sub.Unsubscribe()
}

// subscription is what Subscribe returns.
type subscription struct {
	bus    *Bus
	sub    *nats.Subscription
	closed atomic.Bool
}

// Close ends the subscription: fn is not called for messages that arrive
// after Close returned. It does not wait for a call of fn in progress, so
// fn may call it.
func (s *subscription) Close() error {
	s.bus.mu.Lock()
	s.bus.unsubscribe(s)
	s.bus.mu.Unlock()
	return nil
}
