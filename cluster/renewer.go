package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Renewer keeps a node's leases: every LeaseTTL/3 it renews all of them at
// once (StateStore.RenewAll), but those that a write extended since the
// previous round began (Extended), and tells the node of each lease it has
// lost, so that the node stops serving the session. A durable Node makes
// its own; NewRenewer makes one for a StateStore used without a Node. All
// methods may be called concurrently.
type Renewer struct {
	store  StateStore
	lost   func(Lease, error)
	logger *slog.Logger
	every  time.Duration

	mu     sync.Mutex
	leases map[string]heldLease // guarded by mu; by session id
	round  time.Time            // when the last round began (or NewRenewer was called); the loop's own

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRenewer starts renewing the leases of s that Add is given, until
// Close. lost, if not nil, is called on the Renewer's goroutine (one call
// at a time; it must not call Close) with a lease it has dropped and why:
// ErrFenced (another node took the session over), ErrNoState (the state
// expired or was deleted), ErrStateCorrupt or ErrStateVersion. A renewal
// that fails with ErrStateUnavailable keeps the lease and is logged at
// Warn (logger, or slog's default when nil): if the node cannot reach the
// store for LeaseTTL, another node that can may take its sessions over,
// and the node learns it at its next renewal or write.
func NewRenewer(s StateStore, lost func(Lease, error), logger *slog.Logger) *Renewer {
	if logger == nil {
		logger = slog.Default()
	}
	r := &Renewer{
		store:  s,
		lost:   lost,
		logger: logger,
		every:  max(s.LeaseTTL()/3, time.Millisecond),
		leases: map[string]heldLease{},
		round:  time.Now(),
		done:   make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	go r.loop()
	return r
}

// heldLease is a lease the Renewer holds.
type heldLease struct {
	lease Lease
	// extended is when the last write that extended the lease (Extended)
	// began; zero for none.
	extended time.Time
}

// Add has the Renewer renew l from now on, in place of any lease of the
// same session it held. The call that got l (StateStore.Create or
// TakeOver) extended it: Extended with the time it began leaves l out of
// the next round.
func (r *Renewer) Add(l Lease) {
	r.mu.Lock()
	r.leases[l.ID] = heldLease{lease: l}
	r.mu.Unlock()
}

// Extended tells the Renewer that a write which began at the time at
// extended l (StateStore.Write returned nil): the next round of renewals
// leaves l out if at is after the previous round began, since l is then at
// least as fresh as that round would have left it. It does nothing for a
// lease the Renewer does not hold.
func (r *Renewer) Extended(l Lease, at time.Time) {
	r.mu.Lock()
	if h, ok := r.leases[l.ID]; ok && h.lease == l && at.After(h.extended) {
		h.extended = at
		r.leases[l.ID] = h
	}
	r.mu.Unlock()
}

// Remove stops renewing the session's lease (it ended, or was released).
func (r *Renewer) Remove(id string) {
	r.mu.Lock()
	delete(r.leases, id)
	r.mu.Unlock()
}

// Len returns how many leases the Renewer holds.
func (r *Renewer) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.leases)
}

// Close stops renewing and returns once the Renewer's goroutine is done
// (a renewal in flight is canceled). The leases lapse after LeaseTTL;
// a node that shuts down releases them first (StateStore.Release) so that
// others take its sessions over at once.
func (r *Renewer) Close() {
	r.cancel()
	<-r.done
}

func (r *Renewer) loop() {
	defer close(r.done)
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		r.renew()
	}
}

// renew renews every lease once, bounded by twice the renewal interval
// (two thirds of LeaseTTL): a slow store still renews in time, and a
// renewal that would come too late is given up. It leaves out the leases
// that a write which began after the previous round began extended (for
// the first round, after NewRenewer was called).
func (r *Renewer) renew() {
	began, previous := time.Now(), r.round
	r.round = began
	r.mu.Lock()
	leases := make([]Lease, 0, len(r.leases))
	for _, h := range r.leases {
		if h.extended.Before(previous) {
			leases = append(leases, h.lease)
		}
	}
	r.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 2*r.every)
	defer cancel()
	unavailable := 0
	for i, err := range r.store.RenewAll(ctx, leases) {
		switch {
		case err == nil:
		case errors.Is(err, ErrStateUnavailable):
			unavailable++
		default:
			if r.drop(leases[i]) && r.lost != nil {
				r.lost(leases[i], err)
			}
		}
	}
	if unavailable > 0 && r.ctx.Err() == nil {
		r.logger.Warn("tether: leases not renewed", "leases", unavailable)
	}
}

// drop removes l if it is still the lease held for its session (Add may
// have replaced it meanwhile), and reports whether it did.
func (r *Renewer) drop(l Lease) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leases[l.ID].lease != l {
		return false
	}
	delete(r.leases, l.ID)
	return true
}
