package redisbus

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster"
)

// Reconnection back-off of the loop, doubled from the first to the last.
const (
	firstRetry = 50 * time.Millisecond
	lastRetry  = time.Second
)

// receive reads b's pub/sub connection until Close. On an error, go-redis
// drops the connection; the next Receive dials a new one and subscribes it
// to every channel again.
func (b *Bus) receive() {
	defer b.wg.Done()
	retry := firstRetry
	down := false
	for {
		msg, err := b.ps.Receive(b.ctx)
		if err != nil {
			if b.ctx.Err() != nil {
				return
			}
			b.connectionLost()
			if !down {
				down = true
				b.log.Warn("redisbus: lost the pub/sub connection; reconnecting", "err", err)
			}
			select {
			case <-time.After(retry):
			case <-b.ctx.Done():
				return
			}
			retry = min(2*retry, lastRetry)
			continue
		}
		if down {
			down = false
			b.log.Info("redisbus: the pub/sub connection is back")
		}
		retry = firstRetry
		switch msg := msg.(type) {
		case *redis.Message:
			b.dispatch(msg.Channel, msg.Payload)
		case *redis.Pong:
			b.pong(msg.Payload)
		}
	}
}

// dispatch hands a message to what subscribes its channel.
func (b *Bus) dispatch(channel, payload string) {
	switch {
	case channel == b.replyTo:
		b.deliverReply([]byte(payload))
	case strings.HasPrefix(channel, b.pubPrefix):
		b.mu.Lock()
		for s := range b.subs[channel] {
			if !s.queue.Push([]byte(payload)) {
				b.dropped.Add(1)
			}
		}
		b.mu.Unlock()
	case strings.HasPrefix(channel, b.reqPrefix):
		b.mu.Lock()
		srv := b.servers[channel]
		b.mu.Unlock()
		if srv != nil {
			b.call(srv, []byte(payload))
		}
	}
}

// connectionLost wakes the barriers waiting on the connection that failed,
// so that they ping again on the next one.
func (b *Bus) connectionLost() {
	b.mu.Lock()
	close(b.broken)
	b.broken = make(chan struct{})
	b.mu.Unlock()
}

// pong ends the barrier whose token payload is.
func (b *Bus) pong(payload string) {
	b.mu.Lock()
	done := b.pings[payload]
	delete(b.pings, payload)
	b.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// barrier returns once Redis has handled every command sent on the pub/sub
// connection before it was called: it sends a PING with a token of its own
// and waits for the loop to read the answer, which Redis sends after the
// answers to those commands. When the connection fails meanwhile, it pings
// again on the next one (which go-redis subscribed to every channel).
func (b *Bus) barrier(ctx context.Context) error {
	for {
		token := "tether-barrier-" + strconv.FormatUint(b.nextPing.Add(1), 10)
		done := make(chan struct{})
		b.mu.Lock()
		b.pings[token] = done
		broken := b.broken
		b.mu.Unlock()
		err := b.ps.Ping(ctx, token)
		if err == nil {
			select {
			case <-done:
				return nil
			case <-broken:
				b.mu.Lock()
				delete(b.pings, token)
				b.mu.Unlock()
				continue
			case <-ctx.Done():
				err = ctx.Err()
			case <-b.ctx.Done():
				err = cluster.ErrClosed
			}
		}
		b.mu.Lock()
		delete(b.pings, token)
		b.mu.Unlock()
		return err
	}
}
