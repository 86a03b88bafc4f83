package redisbus

import (
	"context"
	"strings"
	"time"

	"github.com/tetherkit/tether/cluster"
)

// Request sends data to the handler serving subject in an envelope with
// one SPUBLISH and waits for the reply on b's reply channel. It returns
// cluster.ErrNoResponders at once when no connection to Redis subscribes
// the subject's request channel, cluster.ErrTooBig for data or a reply
// over MaxPayload, cluster.ErrClosed after Close (a Request in progress
// too), ctx's error when ctx ends before the reply arrives, an error
// wrapping cluster.ErrUnavailable when Redis cannot be reached, and an
// error for an invalid subject. The handler's context ends when the time
// left before ctx's deadline, as Request sent it, has passed.
func (b *Bus) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if err := b.check(ctx, subject, data); err != nil {
		return nil, err
	}
	r := request{id: b.nextID.Add(1), replyTo: b.replyTo, data: data}
	if deadline, ok := ctx.Deadline(); ok {
		r.timeout = max(time.Until(deadline), time.Microsecond)
	}
	replies := make(chan reply, 1)
	b.mu.Lock()
	b.pending[r.id] = replies
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, r.id)
		b.mu.Unlock()
	}()
	n, err := b.client.SPublish(ctx, b.reqPrefix+subject, appendRequest(nil, r)).Result()
	if err != nil {
		return nil, b.unavailable(ctx, err)
	}
	if n == 0 {
		return nil, cluster.ErrNoResponders
	}
	select {
	case rep := <-replies:
		if rep.status == statusTooBig {
			return nil, cluster.ErrTooBig
		}
		return rep.data, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.ctx.Done():
		return nil, cluster.ErrClosed
	}
}

// Serve answers the Requests sent to subject with handle, each on a
// goroutine of its own, from the moment Redis confirmed the subscription of
// the subject's request channel, before Serve returns. It returns
// cluster.ErrServed when b serves subject already, cluster.ErrClosed after
// Close, ctx's error when ctx ends before Redis confirmed, an error
// wrapping cluster.ErrUnavailable when Redis cannot be reached, and an
// error for an invalid subject.
func (b *Bus) Serve(ctx context.Context, subject string, handle func(ctx context.Context, data []byte) []byte) (cluster.Subscription, error) {
	if err := b.check(ctx, subject, nil); err != nil {
		return nil, err
	}
	channel := b.reqPrefix + subject
	sctx, cancel := context.WithCancel(b.ctx)
	srv := &server{bus: b, channel: channel, handle: handle, ctx: sctx, cancel: cancel}
	b.cmdMu.Lock()
	b.mu.Lock()
	if b.closed || b.servers[channel] != nil {
		closed := b.closed
		b.mu.Unlock()
		b.cmdMu.Unlock()
		cancel()
		if closed {
			return nil, cluster.ErrClosed
		}
		return nil, cluster.ErrServed
	}
	b.servers[channel] = srv
	b.mu.Unlock()
	err := b.ps.SSubscribe(ctx, channel)
	b.cmdMu.Unlock()
	if err == nil {
		err = b.barrier(ctx)
	}
	if err != nil {
		srv.Close()
		return nil, b.unavailable(ctx, err)
	}
	return srv, nil
}

// server is what Serve returns.
type server struct {
	bus     *Bus
	channel string
	handle  func(ctx context.Context, data []byte) []byte
	ctx     context.Context // ends when the server or the bus closes
	cancel  context.CancelFunc
}

// Close stops serving: the contexts of the handlers in progress end, and
// once Redis has confirmed the unsubscription (within 5 s), Requests to the
// subject get cluster.ErrNoResponders unless another bus serves it. It
// does not wait for the handlers, so handle may call it.
func (srv *server) Close() error {
	b := srv.bus
	b.cmdMu.Lock()
	b.mu.Lock()
	if b.servers[srv.channel] != srv {
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return nil
	}
	delete(b.servers, srv.channel)
	b.mu.Unlock()
	srv.cancel()
	ctx, cancel := context.WithTimeout(b.ctx, closeTimeout)
	defer cancel()
	err := b.ps.SUnsubscribe(ctx, srv.channel)
	b.cmdMu.Unlock()
	if err == nil {
		b.barrier(ctx) // Redis down: it forgot the subscription already
	}
	return nil
}

// call runs srv's handler for the request envelope msg on a goroutine of
// its own and publishes the reply, unless the handler returned after the
// requester's deadline or srv closed meanwhile (nobody waits for it).
func (b *Bus) call(srv *server, msg []byte) {
	r, err := parseRequest(msg)
	if err != nil || !b.isReplyChannel(r.replyTo) {
		b.dropMalformed(srv.channel, msg)
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		ctx, cancel := srv.ctx, context.CancelFunc(func() {})
		if r.timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, r.timeout)
		}
		defer cancel()
		data := srv.handle(ctx, r.data)
		if ctx.Err() != nil {
			return
		}
		rep := reply{id: r.id, status: statusOK, data: data}
		if len(data) > b.maxPayload {
			rep = reply{id: r.id, status: statusTooBig}
		}
		if err := b.client.SPublish(ctx, r.replyTo, appendReply(nil, rep)).Err(); err != nil && ctx.Err() == nil {
			b.log.Warn("redisbus: a reply was lost", "channel", r.replyTo, "err", err)
		}
	}()
}

// isReplyChannel reports whether channel may be a reply channel of this
// cluster's: a forged request cannot make a handler publish elsewhere.
func (b *Bus) isReplyChannel(channel string) bool {
	return len(channel) == len(b.replyTo) && strings.HasPrefix(channel, b.replyPre)
}

// deliverReply hands a reply envelope to the Request waiting for it.
func (b *Bus) deliverReply(msg []byte) {
	r, err := parseReply(msg)
	if err != nil {
		b.dropMalformed(b.replyTo, msg)
		return
	}
	b.mu.Lock()
	replies := b.pending[r.id]
	delete(b.pending, r.id)
	b.mu.Unlock()
	if replies != nil {
		replies <- r // buffered, and the id is used once
	}
}

// dropMalformed counts and logs a message on channel that is not an
// envelope of this package's.
func (b *Bus) dropMalformed(channel string, msg []byte) {
	b.malformed.Add(1)
	b.log.Warn("redisbus: dropped a malformed message", "channel", channel, "bytes", len(msg))
}
