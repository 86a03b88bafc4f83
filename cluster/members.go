package cluster

import (
	"context"
	"maps"
	"slices"
	"time"
)

// Membership: every node publishes a heartbeat on "tether.nodes" every
// HeartbeatInterval, with the number of its last presence event on the
// bus; a node unheard for NodeTimeout is gone, and so are its members.

// remoteNode is another node, as this one has heard of it.
type remoteNode struct {
	id    string
	heard time.Time // the last time anything came from it

	// members is its presence: topic -> session id -> info. It is right
	// as of its event seq when synced.
	members map[string]map[string][]byte
	seq     uint64
	synced  bool
	// syncing: its snapshot is on its way, and its events wait in held.
	syncing bool
	held    []presenceEvent
	// beat is the event number its previous heartbeat announced: by the
	// next heartbeat, that event must have come.
	beat uint64
}

// heardFrom returns the node id, new if never heard of, and notes that it
// is alive. It is called with mu held.
func (b *Broker) heardFrom(id string) *remoteNode {
	n := b.nodes[id]
	if n == nil {
		n = &remoteNode{id: id, members: make(map[string]map[string][]byte)}
		b.nodes[id] = n
	}
	n.heard = time.Now()
	return n
}

// heartbeat takes n's heartbeat, which announces seq as the number of its
// last presence event on the bus: it fetches n's snapshot when n is not
// known yet, or when the event its previous heartbeat announced has not
// come (lost). It is called with mu held.
func (b *Broker) heartbeat(n *remoteNode, seq uint64) {
	switch {
	case n.syncing:
	case !n.synced && seq == 0: // n never had a member
		b.replaceMembers(n, nil, 0)
	case !n.synced, n.seq < n.beat:
		b.startSync(n)
	}
	n.beat = seq
}

// forget removes node n, its members leaving (Left events). It is called
// with mu held.
func (b *Broker) forget(n *remoteNode) {
	b.replaceMembers(n, nil, 0)
	delete(b.nodes, n.id)
	b.nodesGone.Add(1)
}

// beat publishes this node's heartbeat every HeartbeatInterval, the first
// at once, and forgets the nodes unheard for NodeTimeout, until Close.
func (b *Broker) beat() {
	tick := time.NewTicker(b.opts.HeartbeatInterval)
	defer tick.Stop()
	var buf []byte
	for {
		buf = appendHeartbeat(buf[:0], b.id, b.published.Load())
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.HeartbeatInterval)
		err := b.bus.Publish(ctx, nodesSubject, buf)
		cancel()
		if err != nil && b.ctx.Err() == nil {
			b.warn("cluster: a heartbeat did not reach the bus", "error", err)
		}
		b.expire(time.Now().Add(-b.opts.NodeTimeout))
		select {
		case <-tick.C:
		case <-b.ctx.Done():
			return
		}
	}
}

// expire forgets the nodes unheard since before, and the goodbyes heard
// before it: node ids are not used again, and by then nothing of such a
// node is still on its way.
func (b *Broker) expire(before time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.nodes {
		if n.heard.Before(before) {
			b.opts.Logger.Info("cluster: a node is gone", "gone", n.id, "heard", n.heard, "node", b.id)
			b.forget(n)
		}
	}
	for id, at := range b.departed {
		if at.Before(before) {
			delete(b.departed, id)
		}
	}
}

// Nodes returns the ids of the other nodes this one hears from, sorted.
func (b *Broker) Nodes() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Sorted(maps.Keys(b.nodes))
}
