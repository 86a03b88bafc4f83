package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/wire"
)

// catchUp stands for a subscriber that continues a subscription it had on
// another node (broker.Resumable), in its topic's subscribers: while the
// messages it missed are fetched from the History and delivered, the
// topic's later messages wait in held; then they follow, those it has
// already (at or below floor) dropped.
type catchUp struct {
	broker.Subscriber
	after uint64 // the offset the subscriber had reached

	mu        sync.Mutex
	replaying bool               // guarded by mu
	held      []*broker.Delivery // guarded by mu; what came while replaying, in order
	floor     uint64             // guarded by mu; deliveries at or below it are dropped
	dropped   bool               // guarded by mu; the replay failed: nothing more is delivered
}

var _ broker.GapCloser = (*catchUp)(nil)

// resumeOf returns the catchUp of sub for topic when sub continues a
// subscription (broker.Resumable.ResumeAfter), or nil.
func resumeOf(topic string, sub broker.Subscriber) *catchUp {
	r, ok := sub.(broker.Resumable)
	if !ok {
		return nil
	}
	after, ok := r.ResumeAfter(topic)
	if !ok {
		return nil
	}
	return &catchUp{Subscriber: sub, after: after, replaying: true}
}

// Deliver implements broker.Subscriber: it holds d while the missed
// messages are replayed, drops it when the subscriber has it already, and
// otherwise delivers it. Deliveries come in offset order (the topic's
// sequence); the lock keeps them in order with those held.
func (c *catchUp) Deliver(d *broker.Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.dropped:
	case c.replaying:
		c.held = append(c.held, d)
	case d.Offset == 0 || d.Offset > c.floor:
		c.Subscriber.Deliver(d)
	}
}

// CloseGap implements broker.GapCloser for the subscriber it stands for.
func (c *catchUp) CloseGap(topic string) {
	if gc, ok := c.Subscriber.(broker.GapCloser); ok {
		gc.CloseGap(topic)
	}
}

// release ends the replay: what was held follows, but what is at or below
// floor, and so do later deliveries.
func (c *catchUp) release(floor uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replaying, c.floor = false, floor
	for _, d := range c.held {
		if d.Offset == 0 || d.Offset > floor {
			c.Subscriber.Deliver(d)
		}
	}
	c.held = nil
}

// abandon ends a replay that failed: what was held is dropped, and so are
// later deliveries (the subscriber leaves the topic).
func (c *catchUp) abandon() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replaying, c.dropped, c.held = false, true, nil
}

// position runs at the end of a Subscribe with a History that made sub
// join topic, the messages after offset start on: it tells a new
// subscription where it starts (broker.Resumable.Joined), and delivers to
// one that continues (c) what it missed up to start, before the rest.
// started is false when the topic's delivery has not started (the broker
// closed meanwhile): nothing is delivered then.
//
// When the History no longer holds what c missed (ErrHistoryGap), or holds
// it corrupt (ErrHistoryCorrupt: fetching again would find it so again),
// the messages are lost: c is given those fetched before the gap and
// closed (broker.GapCloser). When the History cannot be reached, or
// answers too slowly, for NodeTimeout, or ctx ends, or the broker closes,
// nothing is lost yet: position delivers nothing, abandons c (what it held
// and what comes later are dropped) and returns an error wrapping the
// History's, for Subscribe to undo the join; a later Subscribe of the
// session (a later takeover) replays it all.
func (b *Broker) position(ctx context.Context, topic string, sub broker.Subscriber, c *catchUp, start uint64, started bool) error {
	if c == nil {
		if r, ok := sub.(broker.Resumable); ok && started {
			r.Joined(topic, start)
		}
		return nil
	}
	if started && start > c.after {
		missed, err := b.replay(ctx, topic, sub.ID(), c.after, start)
		if err != nil && !errors.Is(err, ErrHistoryGap) && !errors.Is(err, ErrHistoryCorrupt) {
			c.abandon()
			if b.ctx.Err() != nil {
				err = ErrClosed
			}
			b.opts.Logger.Warn("cluster: a resumed subscriber's missed messages could not be fetched; it does not join the topic", "topic", topic,
				"session", sub.ID(), "from", c.after+1, "to", start, "error", err, "node", b.id)
			return fmt.Errorf("cluster: fetching what topic %q's resumed subscriber missed (offsets %d to %d): %w", topic, c.after+1, start, err)
		}
		for _, d := range missed {
			c.Subscriber.Deliver(d)
		}
		b.fetched.Add(uint64(len(missed)))
		if err != nil {
			n := b.gaps.Add(1)
			b.opts.Logger.Warn("cluster: a resumed subscriber's missed messages are lost; closing it", "topic", topic, "session", sub.ID(),
				"from", c.after+1, "to", start, "error", err, "gaps", n, "node", b.id)
			c.CloseGap(topic)
		}
	}
	c.release(max(c.after, start))
	return nil
}

// replay fetches from the History topic's messages after offset after up
// to start, but those published to exclude session id, as deliveries, in
// order. With an error wrapping ErrHistoryGap (the History no longer holds
// them) or ErrHistoryCorrupt, it returns those before the gap too; with
// any other (the History cannot be reached for NodeTimeout, or ctx ends,
// or the broker closes), none.
func (b *Broker) replay(ctx context.Context, topic, id string, after, start uint64) ([]*broker.Delivery, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.ctx, cancel)()
	var missed []*broker.Delivery
	failingSince := time.Time{}
	for from := after + 1; from <= start; {
		rctx, rcancel := context.WithTimeout(ctx, b.opts.NodeTimeout)
		entries, err := b.opts.History.Range(rctx, topic, from, int(min(fetchPage, start-from+1)))
		rcancel()
		if err == nil && (len(entries) == 0 || entries[0].Offset != from) {
			err = fmt.Errorf("%w: topic %q: no message at offset %d, given out", ErrHistoryCorrupt, topic, from)
		}
		if err != nil {
			if errors.Is(err, ErrHistoryGap) || errors.Is(err, ErrHistoryCorrupt) {
				return missed, err
			}
			if ctx.Err() != nil {
				return nil, err
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) >= b.opts.NodeTimeout {
				return nil, err
			}
			b.warn("cluster: fetching a topic's history failed; trying again", "topic", topic, "error", err)
			select {
			case <-time.After(retryWait):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		failingSince = time.Time{}
		for _, e := range entries {
			if e.Offset != from || from > start {
				break
			}
			if e.Exclude != id {
				missed = append(missed, &broker.Delivery{Topic: topic, Message: e.Message, Frames: new(wire.Frames), Offset: e.Offset})
			}
			from++
		}
	}
	return missed, nil
}
