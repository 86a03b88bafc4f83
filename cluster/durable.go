package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The durable side of a node (NodeOptions.State): the leases of the
// sessions it holds, their journals, and the takeover of the sessions of
// gone nodes.

// stateUnreadable is the close a session whose stored state cannot be read
// ends with, for its client: StatusInternalError, after which clients
// negotiate a new session.
var stateUnreadable = wire.CloseError{Code: wire.StatusInternalError, Reason: "session state unreadable"}

// errMoved is what a relayed call returns, on a durable node, when the node
// it went to does not hold the session (any more): it moved, or is moving,
// to another node. The transport answers 503 or ends the connection; the
// client comes back, and the next lookup asks the state.
var errMoved = fmt.Errorf("%w: the session moved to another node", session.ErrUnreachable)

// errHandedOver is the cause of the end, on this node, of the sessions
// Handover hands over.
var errHandedOver = fmt.Errorf("%w: handed over", session.ErrLeaseLost)

// durable is a durable node's part.
type durable struct {
	n       *Node
	state   StateStore
	renewer *Renewer
	writer  *stateWriter                // coalesces the journals' writes; nil unless state is a StateBatchWriter
	restore atomic.Pointer[restoreFunc] // set by the server (SetRestore)

	mu       sync.Mutex
	journals map[string]*journal      // the sessions held here with a lease, by id; guarded by mu
	taking   map[string]chan struct{} // takeovers in progress, by id; closed when done; guarded by mu
	handing  bool                     // Handover has begun: no new session, no Delete; guarded by mu
}

type restoreFunc = func(session.RequestInfo, session.Restored) (*session.Local, error)

func newDurable(n *Node, state StateStore) *durable {
	d := &durable{n: n, state: state, journals: map[string]*journal{}, taking: map[string]chan struct{}{}}
	d.renewer = NewRenewer(state, d.lost, n.log)
	if bw, ok := state.(StateBatchWriter); ok {
		d.writer = newStateWriter(n, bw)
	}
	return d
}

// journal is the Journal of one session held here: its writes carry the
// node's lease.
type journal struct {
	d     *durable
	lease Lease
	local *session.Local // guarded by d.mu; set by Add
	gone  atomic.Bool    // the lease was lost or released: the session's end deletes nothing
	// restoring is set while the server restores the session taken over:
	// a session that ends meanwhile (its takeover fails, and is tried
	// again) deletes nothing.
	restoring atomic.Bool
}

// Write implements session.Journal. A write extends the lease: the
// Renewer leaves it out of its next round.
func (j *journal) Write(ctx context.Context, e *session.Entry) error {
	began := time.Now()
	var err error
	if j.d.writer != nil {
		err = j.d.writer.write(ctx, j.lease, e)
	} else {
		err = j.d.state.Write(ctx, j.lease, e)
	}
	if err == nil {
		j.d.renewer.Extended(j.lease, began)
		return nil
	}
	if errors.Is(err, ErrStateUnavailable) {
		return err
	}
	j.gone.Store(true)
	if !errors.Is(err, ErrFenced) {
		j.d.n.log.Error("tether: session state write failed: the session ends here", "session", j.lease.ID, "err", err)
	}
	return fmt.Errorf("%w: %w", session.ErrLeaseLost, err)
}

// open implements session.DurableStore.OpenJournal.
func (d *durable) open(ctx context.Context, id, token string, info session.RequestInfo) (session.Journal, error) {
	data, err := info.MarshalBinary()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	handing := d.handing
	d.mu.Unlock()
	if handing {
		return nil, fmt.Errorf("%w: the node hands its sessions over", ErrStateUnavailable)
	}
	began := time.Now()
	l, err := d.state.Create(ctx, id, token, d.n.id, data)
	if err != nil {
		return nil, err
	}
	j := &journal{d: d, lease: l}
	d.mu.Lock()
	d.journals[id] = j
	d.mu.Unlock()
	d.renewer.Add(l)
	d.renewer.Extended(l, began)
	return j, nil
}

// added records the Local of a journaled session the store added.
func (d *durable) added(l *session.Local) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if j := d.journals[l.ID()]; j != nil && j.local == nil {
		j.local = l
	}
}

// removed forgets a session that finished, and deletes its state unless it
// moved (its lease was lost, or handed over). It is called with the
// session's lock held: the deletion runs on a goroutine of the node's.
func (d *durable) removed(l *session.Local) {
	d.mu.Lock()
	j := d.journals[l.ID()]
	if j == nil || (j.local != nil && j.local != l) {
		d.mu.Unlock()
		return
	}
	delete(d.journals, l.ID())
	keep := d.handing || j.gone.Load() || j.restoring.Load()
	d.mu.Unlock()
	d.renewer.Remove(l.ID())
	if keep {
		return
	}
	d.n.goAsync(func() {
		// Not canceled by Close, which waits for it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(d.n.ctx), d.n.opts.RequestTimeout)
		defer cancel()
		if err := d.state.Delete(ctx, j.lease); err != nil && !errors.Is(err, ErrFenced) && !errors.Is(err, ErrNoState) {
			// It expires with the resume window.
			d.n.log.Warn("tether: session state not deleted", "session", l.ID(), "err", err)
		}
	})
}

// lost is the Renewer's: the node lost the lease of a session (taken over
// by another node, or its state is gone), which ends here at once, with no
// close frame: its client comes back and is served by the new owner.
func (d *durable) lost(l Lease, err error) {
	d.mu.Lock()
	j := d.journals[l.ID]
	var local *session.Local
	if j != nil && j.lease == l {
		j.gone.Store(true)
		local = j.local
	}
	d.mu.Unlock()
	if !errors.Is(err, ErrFenced) {
		d.n.log.Warn("tether: session lease lost", "session", l.ID, "err", err)
	}
	if local != nil {
		local.LeaseLost(fmt.Errorf("%w: %w", session.ErrLeaseLost, err))
	}
}

// takeOver answers the lookup of a session that no node was found to
// hold: the node its id names is gone (gone), or does not hold it. It asks
// the state: a session whose lease has lapsed is taken over, restored here
// and returned; one that another node owns is relayed to it; one whose
// owner is gone but whose lease has not lapsed yet is unreachable for now
// (503: the client tries again). A session the state does not know ends
// with StatusOwnerGone when its owner is gone, and is unknown otherwise.
func (d *durable) takeOver(id, token string, gone bool) (session.Endpoint, error) {
	n := d.n
	// One takeover of a session at a time on this node: a TakeOver by the
	// lease's holder succeeds again, and would restore it twice.
	d.mu.Lock()
	for d.taking[id] != nil {
		wait := d.taking[id]
		d.mu.Unlock()
		select {
		case <-wait:
		case <-n.ctx.Done():
			return nil, errNodeClosed
		}
		d.mu.Lock()
	}
	done := make(chan struct{})
	d.taking[id] = done
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.taking, id)
		d.mu.Unlock()
		close(done)
	}()
	if ep, err := n.localStore().Lookup(id, token); err == nil {
		return ep, nil // restored meanwhile
	}

	lease, st, err := d.tryTakeOver(id, token)
	var owned *OwnedError
	switch {
	case err == nil:
		return d.restored(lease, st, token)
	case errors.As(err, &owned):
		return d.relayTo(owned.Node, id, token)
	case errors.Is(err, ErrBadToken):
		return nil, session.ErrUnknownSession
	case errors.Is(err, ErrNoState):
		if gone {
			return goneEndpoint(n, id, ownerGone), nil
		}
		return nil, session.ErrUnknownSession
	case errors.Is(err, ErrStateUnavailable):
		n.log.Warn("tether: session state unavailable: no takeover", "session", id, "err", err)
		return nil, fmt.Errorf("%w: %w", session.ErrUnreachable, err)
	case errors.Is(err, ErrInvalidSessionID):
		return nil, session.ErrUnknownSession
	}
	// ErrStateCorrupt, ErrStateVersion: the session cannot go on.
	n.log.Error("tether: session state unreadable: the session ends", "session", id, "err", err)
	return goneEndpoint(n, id, stateUnreadable), nil
}

// tryTakeOver takes session id over. While the lease is held by a node
// that is gone (or by this one, which let the session go an instant ago),
// it tries again, a few times per LeaseTTL, until the lease lapses: the
// request waits here rather than answer 503 and have the client back off.
func (d *durable) tryTakeOver(id, token string) (Lease, *State, error) {
	n := d.n
	ttl := d.state.LeaseTTL()
	deadline := time.Now().Add(ttl)
	for {
		ctx, cancel := context.WithTimeout(n.ctx, n.opts.RequestTimeout)
		lease, st, err := d.state.TakeOver(ctx, id, token, n.id)
		cancel()
		var owned *OwnedError
		if !errors.As(err, &owned) || !(owned.Node == n.id || n.peer(owned.Node).gone()) || time.Now().After(deadline) {
			return lease, st, err
		}
		t := time.NewTimer(max(ttl/8, time.Millisecond))
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			return lease, st, err
		}
	}
}

// restored makes the session taken over with lease from st, through the
// server's restore function.
func (d *durable) restored(lease Lease, st *State, token string) (session.Endpoint, error) {
	n := d.n
	var info session.RequestInfo
	if err := info.UnmarshalBinary(st.Info); err != nil {
		d.release(lease)
		n.log.Error("tether: session state unreadable: the session ends", "session", lease.ID, "err", err)
		return goneEndpoint(n, lease.ID, stateUnreadable), nil
	}
	restore := d.restore.Load()
	if restore == nil { // no server serves the node yet
		d.release(lease)
		return nil, fmt.Errorf("%w: no server", session.ErrUnreachable)
	}
	j := &journal{d: d, lease: lease}
	j.restoring.Store(true)
	d.mu.Lock()
	if d.handing {
		// This node is handing its sessions over (Handover): one
		// restored here would end with 1001 at the Shutdown that
		// follows. The client tries again, and another node takes the
		// session over.
		d.mu.Unlock()
		// Released before the answer, so that the client's next try,
		// on another node, finds the lease free.
		d.release(lease)
		return nil, fmt.Errorf("%w: the node is handing its sessions over", session.ErrUnreachable)
	}
	d.journals[lease.ID] = j
	d.mu.Unlock()
	d.renewer.Add(lease)
	r := st.Restored(token)
	r.Journal = j
	r.Topics = st.Topics
	r.TopicInfo = st.TopicInfo
	r.TopicOffsets = st.TopicOffsets
	l, err := (*restore)(info, r)
	j.restoring.Store(false)
	if err != nil {
		d.mu.Lock()
		if d.journals[lease.ID] == j {
			delete(d.journals, lease.ID)
		}
		d.mu.Unlock()
		d.renewer.Remove(lease.ID)
		d.release(lease)
		if errors.Is(err, session.ErrInvalidRestore) {
			n.log.Error("tether: session state unreadable: the session ends", "session", lease.ID, "err", err)
			return goneEndpoint(n, lease.ID, stateUnreadable), nil
		}
		// Too many sessions here, a server shutting down, a topic the
		// broker could not join (the History could not give what the
		// session missed of it, say): another node, or a later try, may
		// do. The session that ended here deleted nothing (restoring).
		n.log.Warn("tether: session not taken over", "session", lease.ID, "err", err)
		return nil, fmt.Errorf("%w: %w", session.ErrUnreachable, err)
	}
	n.log.Info("tether: session taken over", "session", lease.ID, "epoch", lease.Epoch)
	return l, nil
}

// release gives up a lease this node got but does not use, so that another
// node may take the session over at once. It waits for the store (at most
// RequestTimeout; the lease lapses anyway): it runs while takeOver holds
// the session's turn on this node, so a next try here cannot take the same
// lease back before the Release lands and fences it (a Release is final).
func (d *durable) release(l Lease) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.n.ctx), d.n.opts.RequestTimeout)
	defer cancel()
	d.state.Release(ctx, l)
}

// relayTo returns the Endpoint of session id that node owner holds, as the
// state says, once owner has checked the token: the session was taken over
// by owner, and its id names another node.
func (d *durable) relayTo(owner, id, token string) (session.Endpoint, error) {
	n := d.n
	p := n.peer(owner)
	if owner == n.id || p.judgedGone() {
		// Its owner is gone, or going (this node let it go an instant
		// ago), but its lease has not lapsed yet: once it has, the
		// session is taken over. The client tries again meanwhile.
		return nil, fmt.Errorf("%w: the owner's lease has not lapsed", session.ErrUnreachable)
	}
	ep, err := n.askHolder(p, id, token)
	switch {
	case errors.Is(err, errOwnerGone):
		return nil, fmt.Errorf("%w: the owner's lease has not lapsed", session.ErrUnreachable)
	case err != nil:
		return nil, err
	case ep != nil:
		return ep, nil
	}
	// The owner is restoring it, or has just let it go.
	return nil, errMoved
}

// handOver releases the lease of every session held here, after ending it
// here without a close frame, so that other nodes take them over at once.
func (d *durable) handOver(ctx context.Context) error {
	d.mu.Lock()
	d.handing = true
	var js []*journal
	for _, j := range d.journals {
		js = append(js, j)
	}
	d.mu.Unlock()
	for _, j := range js {
		j.gone.Store(true)
		d.renewer.Remove(j.lease.ID)
		d.mu.Lock()
		local := j.local
		d.mu.Unlock()
		if local != nil {
			local.LeaseLost(errHandedOver)
		}
	}
	// One release per session, a few at a time.
	const parallel = 16
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, j := range js {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.state.Release(ctx, j.lease); err != nil && !errors.Is(err, ErrFenced) && !errors.Is(err, ErrNoState) {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if k := failed.Load(); k > 0 {
		return fmt.Errorf("cluster: %d of %d leases not released (they lapse after LeaseTTL): %w", k, len(js), ErrStateUnavailable)
	}
	return nil
}

// Handover hands the sessions of a durable node (NodeOptions.State) over
// to the other nodes, for a graceful shutdown that keeps them: it ends each
// session held here at once without a close frame (its links end, its
// handler sees an error wrapping session.ErrLeaseLost) and releases its
// lease, so that the next request of its client, on any other node, takes
// it over with nothing lost. From then on the node creates no session
// (negotiate answers 503) and takes none over (a request for one that no
// other node has taken over yet answers 503; the client tries again).
// Call it before the Server's Shutdown, which then
// finds no session to close with 1001 (clients would start new sessions),
// then Close. It returns an error when some leases could not be released
// (those sessions are taken over once their lease lapses), and does
// nothing on a node that is not durable.
func (n *Node) Handover(ctx context.Context) error {
	if n.durable == nil {
		return nil
	}
	return n.durable.handOver(ctx)
}

// durableStore is a durable node's Store: a session.DurableStore.
type durableStore struct{ *store }

var _ session.DurableStore = (*durableStore)(nil)

// OpenJournal implements session.DurableStore: it stores the new session's
// state (Create) and keeps its lease.
func (st *durableStore) OpenJournal(ctx context.Context, id, token string, info session.RequestInfo) (session.Journal, error) {
	return st.n.durable.open(ctx, id, token, info)
}

// SetRestore implements session.DurableStore.
func (st *durableStore) SetRestore(restore func(info session.RequestInfo, r session.Restored) (*session.Local, error)) {
	st.n.durable.restore.Store(&restore)
}
