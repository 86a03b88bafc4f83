package cluster

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/tetherkit/tether/broker"
)

// Presence across nodes: each node numbers its own joins and leaves and
// publishes them (localEvent, sendEvents); the others apply them in order
// (remoteEvent) and fetch a snapshot when one is missing (startSync,
// serveSnapshot).

// localEvent records a join or leave of one of this node's subscribers:
// it numbers it, queues it for the bus and for OnPresence. It is called
// with mu held.
func (b *Broker) localEvent(change broker.PresenceChange, topic string, m broker.Member) {
	if b.closed {
		return // the other nodes learn from the goodbye
	}
	b.seq++
	b.outbox = append(b.outbox, presenceEvent{origin: b.id, seq: b.seq, change: change, topic: topic, member: m})
	select {
	case b.outboxReady <- struct{}{}:
	default:
	}
	b.notes.add(broker.PresenceEvent{Topic: topic, Change: change, Member: m})
}

// sendEvents publishes the events of the outbox, in order, until Close. An
// event the bus does not take is lost for the other nodes, and so are
// those queued behind it (the bus is likely down: they would each wait
// their turn to fail): the heartbeats tell the other nodes, and they fetch
// a snapshot.
func (b *Broker) sendEvents() {
	var buf []byte
	for {
		select {
		case <-b.outboxReady:
		case <-b.ctx.Done():
			return
		}
		b.mu.Lock()
		events := b.outbox
		b.outbox = nil
		b.mu.Unlock()
		for i := range events {
			e := &events[i]
			buf = appendPresenceEvent(buf[:0], e)
			ctx, cancel := context.WithTimeout(b.ctx, b.opts.HeartbeatInterval)
			err := b.bus.Publish(ctx, presenceSubject, buf)
			cancel()
			if err != nil {
				if b.ctx.Err() == nil {
					b.warn("cluster: presence events did not reach the bus", "events", len(events)-i, "error", err)
				}
				b.published.Store(events[len(events)-1].seq)
				break
			}
			b.published.Store(e.seq)
		}
	}
}

// receiveMembership takes what arrives on the presence and membership
// subjects: presence events, heartbeats and goodbyes of the other nodes.
func (b *Broker) receiveMembership(data []byte) {
	kind, e, err := parseMembership(data)
	if err != nil {
		b.dropMalformed("tether.presence or tether.nodes", err)
		return
	}
	if e.origin == b.id {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, gone := b.departed[e.origin]; gone || b.closed {
		return
	}
	switch kind {
	case kindGoodbye:
		b.departed[e.origin] = time.Now()
		if n := b.nodes[e.origin]; n != nil {
			b.forget(n)
		}
	case kindHeartbeat:
		b.heartbeat(b.heardFrom(e.origin), e.seq)
	case kindEvent:
		b.remoteEvent(b.heardFrom(e.origin), e)
	}
}

// remoteEvent applies event e of node n, or holds it while n's snapshot
// comes, fetching one when e is not the next event. It is called with mu
// held.
func (b *Broker) remoteEvent(n *remoteNode, e presenceEvent) {
	switch {
	case n.syncing:
		n.held = append(n.held, e)
	case !n.synced && e.seq == 1: // n's first event: n had no member before
		b.replaceMembers(n, nil, 0)
		b.applyEvent(n, e)
	case !n.synced || e.seq > n.seq+1:
		b.startSync(n)
		n.held = append(n.held, e)
	case e.seq <= n.seq: // in the snapshot already
	default:
		b.applyEvent(n, e)
	}
}

// applyEvent applies n's next event e to n's members, reporting it to
// OnPresence when it changes them. It is called with mu held.
func (b *Broker) applyEvent(n *remoteNode, e presenceEvent) {
	n.seq = e.seq
	members := n.members[e.topic]
	old, had := members[e.member.Session]
	switch {
	case e.change == broker.Joined && !had:
		if members == nil {
			members = make(map[string][]byte)
			n.members[e.topic] = members
		}
		members[e.member.Session] = e.member.Info
		b.notes.add(broker.PresenceEvent{Topic: e.topic, Change: broker.Joined, Member: e.member})
	case e.change == broker.Joined: // joined again with other info: a join after a lost leave
		members[e.member.Session] = e.member.Info
	case e.change == broker.Left && had:
		delete(members, e.member.Session)
		if len(members) == 0 {
			delete(n.members, e.topic)
		}
		b.notes.add(broker.PresenceEvent{Topic: e.topic, Change: broker.Left, Member: broker.Member{Session: e.member.Session, Info: old}})
	}
}

// replaceMembers makes members, n's presence as of its event seq, n's
// presence here, and reports the difference to OnPresence: leaves first,
// then joins. It is called with mu held.
func (b *Broker) replaceMembers(n *remoteNode, members map[string]map[string][]byte, seq uint64) {
	for topic, old := range n.members {
		for id, info := range old {
			if now, ok := members[topic][id]; !ok || !bytes.Equal(now, info) {
				b.notes.add(broker.PresenceEvent{Topic: topic, Change: broker.Left, Member: broker.Member{Session: id, Info: info}})
			}
		}
	}
	for topic, now := range members {
		for id, info := range now {
			if old, ok := n.members[topic][id]; !ok || !bytes.Equal(old, info) {
				b.notes.add(broker.PresenceEvent{Topic: topic, Change: broker.Joined, Member: broker.Member{Session: id, Info: info}})
			}
		}
	}
	if members == nil {
		members = make(map[string]map[string][]byte)
	}
	n.members, n.seq, n.synced = members, seq, true
}

// startSync fetches n's snapshot in a goroutine of its own; n's events
// wait in n.held meanwhile. It is called with mu held.
func (b *Broker) startSync(n *remoteNode) {
	n.syncing, n.held = true, nil
	b.wg.Go(func() { b.sync(n) })
}

// sync fetches n's snapshot and applies it with the events that came
// meanwhile. When it fails, n stays as it was, and its next heartbeat
// tries again.
func (b *Broker) sync(n *remoteNode) {
	seq, members, err := b.fetchSnapshot(n.id)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.nodes[n.id] != n {
		return // n is gone meanwhile
	}
	n.syncing = false
	held := n.held
	n.held = nil
	if err != nil {
		n.synced = false
		if b.ctx.Err() == nil {
			b.warn("cluster: could not fetch a node's presence", "from", n.id, "error", err)
		}
		return
	}
	b.snapshots.Add(1)
	b.replaceMembers(n, members, seq)
	for _, e := range held {
		b.remoteEvent(n, e)
	}
}

// fetchSnapshot asks node id for its presence, page after page, within
// NodeTimeout: the members of its topics as of its event seq (the events
// after seq, applied in order, make it right whatever changed while the
// pages came).
func (b *Broker) fetchSnapshot(id string) (seq uint64, members map[string]map[string][]byte, err error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.NodeTimeout)
	defer cancel()
	members = make(map[string]map[string][]byte)
	var after snapshotEntry
	for page := 0; ; page++ {
		reply, err := b.bus.Request(ctx, snapshotSubject(id), appendAsk(nil, after.topic, after.member.Session))
		if err != nil {
			return 0, nil, err
		}
		pageSeq, more, entries, err := parsePage(reply)
		if err != nil {
			b.dropMalformed(snapshotSubject(id), err)
			return 0, nil, err
		}
		if page == 0 {
			seq = pageSeq
		}
		for _, e := range entries {
			if compareEntries(&e, &after) <= 0 {
				return 0, nil, fmt.Errorf("%w: snapshot page out of order at %q %q", errMalformed, e.topic, e.member.Session)
			}
			after = e
			if members[e.topic] == nil {
				members[e.topic] = make(map[string][]byte)
			}
			members[e.topic][e.member.Session] = e.member.Info
		}
		if !more {
			return seq, members, nil
		}
		if len(entries) == 0 {
			return 0, nil, fmt.Errorf("%w: empty snapshot page with more to come", errMalformed)
		}
	}
}

// compareEntries orders snapshot entries by topic, then session.
func compareEntries(x, y *snapshotEntry) int {
	return cmp.Or(cmp.Compare(x.topic, y.topic), cmp.Compare(x.member.Session, y.member.Session))
}

// serveSnapshot answers a page request for this node's presence: the
// entries after the one named, in order, as many as fit the bus's
// MaxPayload, with the number of this node's last event.
func (b *Broker) serveSnapshot(_ context.Context, data []byte) []byte {
	afterTopic, afterSession, err := parseAsk(data)
	if err != nil {
		b.dropMalformed(snapshotSubject(b.id), err)
		return nil
	}
	after := snapshotEntry{topic: afterTopic, member: broker.Member{Session: afterSession}}
	room := b.bus.MaxPayload() - pageOverhead
	var entries []snapshotEntry
	more := false
	b.mu.RLock()
	seq := b.seq
	names := slices.Sorted(maps.Keys(b.topics))
	i, _ := slices.BinarySearch(names, afterTopic)
	for _, name := range names[i:] {
		t := b.topics[name]
		for _, id := range slices.Sorted(t.subs.IDs()) {
			m, _ := t.subs.Get(id)
			e := snapshotEntry{topic: name, member: broker.Member{Session: id, Info: m.info}}
			if compareEntries(&e, &after) <= 0 {
				continue
			}
			if room -= entryBytes(&e); room < 0 {
				more = true
				break
			}
			entries = append(entries, e)
		}
		if more {
			break
		}
	}
	reply := appendPage(nil, seq, more, entries)
	b.mu.RUnlock()
	return reply
}

// notifier calls the OnPresence function with the events, in order, one
// at a time, on a goroutine of the broker's (run).
type notifier struct {
	ready chan struct{} // a value when events has some

	mu     sync.Mutex
	fn     func(broker.PresenceEvent) // guarded by mu; set once
	events []broker.PresenceEvent     // guarded by mu; oldest first
}

func (q *notifier) listen(fn func(broker.PresenceEvent)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fn == nil {
		q.fn = fn
	}
}

// add queues e, if there is a function to hear it.
func (q *notifier) add(e broker.PresenceEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fn == nil {
		return
	}
	q.events = append(q.events, e)
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// run calls the function with the events until done is closed; the
// events not yet heard then are dropped.
func (q *notifier) run(done <-chan struct{}) {
	for {
		select {
		case <-q.ready:
		case <-done:
			return
		}
		q.mu.Lock()
		events, fn := q.events, q.fn
		q.events = nil
		q.mu.Unlock()
		for _, e := range events {
			select {
			case <-done:
				return
			default:
				fn(e)
			}
		}
	}
}
