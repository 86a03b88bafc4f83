package cluster

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/wire"
)

// DefaultGapWait is the GapWait of BrokerOptions unless set.
const DefaultGapWait = 200 * time.Millisecond

// fetchPage is the most messages one History.Range fetches.
const fetchPage = 1000

// retryWait is how long a fetch waits before it asks a History that failed
// again.
const retryWait = 100 * time.Millisecond

// sequence delivers one topic's messages on this node in offset order, with
// a History: what comes early waits in pending for what comes before it; a
// gap that lasts GapWait is fetched from the History. Lock order: mu, then
// Broker.mu (a delivery lists the subscribers), never the other way.
type sequence struct {
	mu sync.Mutex
	// gen grows at each new bus subscription of the topic: a fetch of an
	// older one changes nothing.
	gen      uint64                // guarded by mu
	started  bool                  // guarded by mu; next is known
	next     uint64                // guarded by mu; the next offset to deliver
	pending  map[uint64]pendingPub // guarded by mu; offsets >= next, or any before started
	timer    *time.Timer           // guarded by mu; the gap's timer, while one waits
	fetching bool                  // guarded by mu; a fetch is under way
	seenHead uint64                // guarded by mu; the History's last offset at the last check
}

// pendingPub is a message waiting for those before it.
type pendingPub struct {
	m       wire.Message
	exclude string
}

// restart forgets what the topic's previous bus subscription left: it is
// called before the node subscribes the topic's subject again. The caller
// holds t's gate.
func (s *sequence) restart() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.started, s.next, s.seenHead = false, 0, 0
	s.pending = make(map[uint64]pendingPub)
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	return s.gen
}

// startSequence sets where t's delivery starts, once its bus subscription
// is active: after the History's last offset, head. What was published
// before is not for the subscribers (it was appended before Subscribe
// returned).
func (b *Broker) startSequence(t *topic, gen, head uint64) {
	s := &t.seq
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	s.started, s.next, s.seenHead = true, head+1, head
	for off := range s.pending {
		if off <= head {
			delete(s.pending, off)
		}
	}
	b.drain(t)
}

// offer hands t a message of offset off, from this node's Publish or from
// the bus: it is delivered once every message before it was.
func (b *Broker) offer(t *topic, off uint64, m wire.Message, exclude string) {
	s := &t.seq
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil || (s.started && off < s.next) {
		return // delivered already, or the topic has no bus subscription
	}
	if _, ok := s.pending[off]; ok {
		return
	}
	s.pending[off] = pendingPub{m: m, exclude: exclude}
	b.drain(t)
}

// drain delivers the pending messages that follow what was delivered, and
// arms the gap's timer while some still wait. It is called with t.seq.mu
// held.
func (b *Broker) drain(t *topic) {
	s := &t.seq
	if !s.started {
		return
	}
	for {
		p, ok := s.pending[s.next]
		if !ok {
			break
		}
		delete(s.pending, s.next)
		b.deliverNumbered(t, s.next, p.m, p.exclude)
		s.next++
	}
	switch {
	case len(s.pending) == 0 && s.timer != nil:
		s.timer.Stop()
		s.timer = nil
	case len(s.pending) > 0 && s.timer == nil && !s.fetching:
		gen := s.gen
		s.timer = time.AfterFunc(b.opts.GapWait, func() { b.gapTimeout(t, gen) })
	}
}

// deliverNumbered hands a message to t's subscribers on this node. It is
// called with t.seq.mu held, in offset order.
func (b *Broker) deliverNumbered(t *topic, off uint64, m wire.Message, exclude string) {
	if subs := b.subscribers(t); len(subs) > 0 {
		broker.Fanout(subs, &broker.Delivery{Topic: t.name, Message: m, Frames: new(wire.Frames), Offset: off}, exclude)
	}
}

// gapTimeout runs when a gap lasted GapWait: what is missing is fetched
// from the History, up to the last message waiting.
func (b *Broker) gapTimeout(t *topic, gen uint64) {
	s := &t.seq
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || s.timer == nil {
		return
	}
	s.timer = nil
	if s.fetching || len(s.pending) == 0 {
		return
	}
	b.startFetch(t, slices.Max(slices.Collect(maps.Keys(s.pending)))-1)
}

// startFetch starts fetching t's messages from next to last from the
// History, unless the broker is closed. It is called with t.seq.mu held.
func (b *Broker) startFetch(t *topic, last uint64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return
	}
	s := &t.seq
	s.fetching = true
	gen := s.gen
	b.wg.Add(1) // under mu's read lock while open: Close waits after it
	go func() {
		defer b.wg.Done()
		b.fetch(t, gen, last)
	}()
}

// fetch delivers t's messages up to last from the History, those the bus
// has not brought meanwhile. A History that no longer holds them, or that
// cannot be reached for NodeTimeout, is a gap: t's subscribers on this node
// are closed (broker.GapCloser), never left with a silent gap.
func (b *Broker) fetch(t *topic, gen, last uint64) {
	s := &t.seq
	failingSince := time.Time{}
	for {
		s.mu.Lock()
		if s.gen != gen {
			s.mu.Unlock()
			return
		}
		from := s.next
		if from > last {
			s.fetching = false
			b.drain(t)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.NodeTimeout)
		entries, err := b.opts.History.Range(ctx, t.name, from, int(min(fetchPage, last-from+1)))
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		if err == nil && len(entries) == 0 {
			err = errors.New("no message at an offset given out")
		}
		if err != nil && !errors.Is(err, ErrHistoryGap) {
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) < b.opts.NodeTimeout {
				b.warn("cluster: fetching a topic's history failed; trying again", "topic", t.name, "error", err)
				select {
				case <-time.After(retryWait):
				case <-b.ctx.Done():
					return
				}
				continue
			}
		}
		s.mu.Lock()
		if s.gen != gen {
			s.mu.Unlock()
			return
		}
		if err != nil {
			b.gap(t, last, err)
			s.mu.Unlock()
			continue
		}
		failingSince = time.Time{}
		for _, e := range entries {
			if e.Offset == s.next {
				delete(s.pending, e.Offset)
				b.deliverNumbered(t, e.Offset, e.Message, e.Exclude)
				s.next++
				b.fetched.Add(1)
			}
		}
		s.mu.Unlock()
	}
}

// gap handles messages of t up to last that can no longer be delivered:
// t's subscribers on this node are closed with 4000 (broker.GapCloser),
// and delivery goes on after last for those that subscribe later. It is
// called with t.seq.mu held.
func (b *Broker) gap(t *topic, last uint64, cause error) {
	s := &t.seq
	n := b.gaps.Add(1)
	b.opts.Logger.Warn("cluster: a topic's messages are lost for this node's subscribers; closing them", "topic", t.name, "from", s.next, "to", last, "error", cause, "gaps", n, "node", b.id)
	s.next = max(s.next, last+1)
	for off := range s.pending {
		if off < s.next {
			delete(s.pending, off)
		}
	}
	subs := b.subscribers(t)
	// Not under t.seq.mu: closing a session runs the application's code.
	b.wg.Add(1) // t.seq.mu is held by a fetch or a check, both counted by wg
	go func() {
		defer b.wg.Done()
		for _, sub := range subs {
			if c, ok := sub.(broker.GapCloser); ok {
				c.CloseGap(t.name)
			}
		}
	}()
}

// watchHeads checks, every HeartbeatInterval, the History's last offset of
// every topic this node listens to: a message given an offset more than an
// interval ago and still not delivered here (the bus lost it and nothing
// came after it) is fetched; a last offset below what was delivered (the
// History lost the topic's counter) is a gap.
func (b *Broker) watchHeads() {
	tick := time.NewTicker(b.opts.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-b.ctx.Done():
			return
		}
		b.checkHeads()
	}
}

func (b *Broker) checkHeads() {
	type check struct {
		t         *topic
		gen, next uint64
	}
	// Not t.seq.mu under b.mu: deliveries take them the other way.
	b.mu.RLock()
	topics := slices.Collect(maps.Values(b.topics))
	b.mu.RUnlock()
	var checks []check
	var names []string
	for _, t := range topics {
		t.seq.mu.Lock()
		if t.seq.started {
			checks = append(checks, check{t: t, gen: t.seq.gen, next: t.seq.next})
			names = append(names, t.name)
		}
		t.seq.mu.Unlock()
	}
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.NodeTimeout)
	heads, err := b.opts.History.Heads(ctx, names)
	cancel()
	if err != nil {
		if b.ctx.Err() == nil {
			b.warn("cluster: reading the topics' history failed", "error", err)
		}
		return
	}
	for i, c := range checks {
		s, head := &c.t.seq, heads[i]
		s.mu.Lock()
		if s.gen == c.gen {
			switch {
			case head+1 < c.next:
				b.gap(c.t, head, errors.New("the history's last offset went back"))
				s.next = head + 1
			case s.seenHead >= s.next && !s.fetching && s.timer == nil:
				b.startFetch(c.t, s.seenHead)
			}
			s.seenHead = head
		}
		s.mu.Unlock()
	}
}
