package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
)

// The checks in this file wait for leases to lapse and state to expire. A
// check that a lease or the state is still there asserts only when the
// call that kept it began less than its duration before the check's call
// returned, so that a slow machine makes it assert less, never fail.

// leaseLapses: once the owner neither writes nor renews for LeaseTTL,
// another node takes the session over, with the state, and the owner is
// fenced.
func (s *suite) leaseLapses(t *testing.T) {
	ctx := testContext(t)
	n := s.nodes(t, 2, ShortLease, ShortWindow*10)
	ss, l := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 1)})
	l2, st := awaitTakeOver(t, ctx, n[1], ss, n[0].id)
	if l2.Epoch != 2 || l2.Node != n[1].id {
		t.Fatalf("TakeOver of a lapsed lease returned %+v", l2)
	}
	wantState(t, st, 1, 0, 0, text("m", 1, 1), nil, nil)
	wantErr(t, "Write of the lapsed owner", n[0].Write(ctx, l, &session.Entry{First: 2, Messages: text("m", 2, 2)}), cluster.ErrFenced)
	wantErr(t, "Renew of the lapsed owner", n[0].Renew(ctx, l), cluster.ErrFenced)
}

// awaitTakeOver has nd try to take ss over until it does, while the
// session is owned by holder (any other error fails t).
func awaitTakeOver(t *testing.T, ctx context.Context, nd node, ss sess, holder string) (cluster.Lease, *cluster.State) {
	t.Helper()
	var l cluster.Lease
	var st *cluster.State
	eventually(t, nd.id+" takes the session over", func() bool {
		var err error
		l, st, err = nd.TakeOver(ctx, ss.id, ss.token, nd.id)
		if err != nil {
			wantOwned(t, "TakeOver while another node holds the session", err, holder)
		}
		return err == nil
	})
	return l, st
}

// renewExtendsLease: a lease renewed within LeaseTTL stays the owner's.
func (s *suite) renewExtendsLease(t *testing.T) {
	s.keepsLease(t, func(nd node, l cluster.Lease, i int) error {
		return nd.Renew(testContext(t), l)
	})
}

// writeExtendsLease: a Write extends the lease as a Renew does.
func (s *suite) writeExtendsLease(t *testing.T) {
	s.keepsLease(t, func(nd node, l cluster.Lease, i int) error {
		return nd.Write(testContext(t), l, &session.Entry{First: uint64(i), Messages: text("m", i, i)})
	})
}

// renewAllExtendsLease: RenewAll extends each lease as Renew does.
func (s *suite) renewAllExtendsLease(t *testing.T) {
	s.keepsLease(t, func(nd node, l cluster.Lease, i int) error {
		return nd.RenewAll(testContext(t), []cluster.Lease{l})[0]
	})
}

// writeWhileRenewing: the owner's writes and its renewals of the same
// lease cross, as a node's journal and its Renewer's do: every call
// succeeds, and every write is stored.
func (s *suite) writeWhileRenewing(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 1)
	const writes = 300
	var sessions []sess
	var leases []cluster.Lease
	for range 3 {
		ss, l := create(t, ctx, n[0], nil)
		sessions, leases = append(sessions, ss), append(leases, l)
	}
	stop := make(chan struct{})
	renewed := make(chan error, 1)
	go func() {
		for {
			for i, err := range n[0].RenewAll(ctx, leases) {
				if err != nil {
					renewed <- fmt.Errorf("RenewAll, lease %d: %w", i, err)
					return
				}
			}
			select {
			case <-stop:
				renewed <- nil
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(leases))
	for i, l := range leases {
		wg.Go(func() {
			for num := uint64(1); num <= writes && errs[i] == nil; num++ {
				errs[i] = n[0].Write(ctx, l, &session.Entry{First: num, Messages: text("m", int(num), int(num)), Acked: num / 2})
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-renewed; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Write to session %d while renewing: %v", i, err)
		}
		wantState(t, load(t, ctx, n[0], sessions[i], leases[i]), writes, writes/2, 0, text("m", writes/2+1, writes), nil, nil)
	}
}

// keepsLease has a node keep a short lease with keep (given the number of
// the call, from 1) for several LeaseTTLs, and another node try to take
// the session over after each call: it must find it owned.
func (s *suite) keepsLease(t *testing.T, keep func(nd node, l cluster.Lease, i int) error) {
	ctx := testContext(t)
	n := s.nodes(t, 2, ShortLease, ShortWindow*10)
	ss, l := create(t, ctx, n[0], nil)
	checked := 0
	for i := 1; i <= 12; i++ {
		start := time.Now()
		if err := keep(n[0], l, i); err != nil {
			t.Fatalf("keeping the lease, call %d: %v", i, err)
		}
		_, _, err := n[1].TakeOver(ctx, ss.id, ss.token, n[1].id)
		if time.Since(start) < ShortLease {
			wantOwned(t, "TakeOver of a lease kept", err, n[0].id)
			checked++
		} else if err == nil {
			t.Logf("the lease lapsed on a slow machine after %d checks", checked)
			return
		}
		time.Sleep(ShortLease / 4)
	}
	t.Logf("%d of 12 checks asserted", checked)
}

// stateExpires: state whose owner neither writes nor renews for the resume
// window is gone: every call gives ErrNoState, and the id may be created
// again.
func (s *suite) stateExpires(t *testing.T) {
	ctx := testContext(t)
	n := s.nodes(t, 2, ShortLease, ShortWindow)
	ss, l := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 1), Subscribe: []string{"a"}})
	eventually(t, "the state expires", func() bool {
		// A wrong token changes nothing, so it does not keep the state.
		_, _, err := n[1].TakeOver(ctx, ss.id, "wrong", n[1].id)
		if err != nil && !errors.Is(err, cluster.ErrNoState) {
			wantErr(t, "TakeOver with a wrong token before the state expires", err, cluster.ErrBadToken)
		}
		return errors.Is(err, cluster.ErrNoState)
	})
	_, _, err := n[1].TakeOver(ctx, ss.id, ss.token, n[1].id)
	wantErr(t, "TakeOver of expired state", err, cluster.ErrNoState)
	wantErr(t, "Write of expired state", n[0].Write(ctx, l, &session.Entry{First: 2, Messages: text("m", 2, 2)}), cluster.ErrNoState)
	wantErr(t, "Renew of expired state", n[0].Renew(ctx, l), cluster.ErrNoState)
	wantErr(t, "Release of expired state", n[0].Release(ctx, l), cluster.ErrNoState)
	l2, err := n[1].Create(ctx, ss.id, ss.token, n[1].id, nil)
	if err != nil {
		t.Fatalf("Create after the state expired: %v", err)
	}
	wantState(t, load(t, ctx, n[1], ss, l2), 0, 0, 0, nil, nil, nil)
}

// renewKeepsState: state renewed within the resume window stays, for
// several windows.
func (s *suite) renewKeepsState(t *testing.T) {
	ctx := testContext(t)
	n := s.nodes(t, 2, ShortLease, ShortWindow)
	ss, l := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 1)})
	checked := 0
	last := time.Now()
	for end := time.Now().Add(3 * ShortWindow); time.Now().Before(end); {
		start := time.Now()
		err := n[0].Renew(ctx, l)
		if errors.Is(err, cluster.ErrNoState) && time.Since(last) > ShortWindow {
			t.Logf("the state expired on a slow machine after %d checks", checked)
			return
		}
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		last = start
		time.Sleep(ShortWindow / 4)
	}
	// Renewed a moment ago, it is all there.
	if err := n[0].Release(ctx, l); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, st, err := n[1].TakeOver(ctx, ss.id, ss.token, n[1].id); time.Since(last) < ShortWindow {
		if err != nil {
			t.Fatalf("TakeOver of state renewed for 3 windows: %v", err)
		}
		wantState(t, st, 1, 0, 0, text("m", 1, 1), nil, nil)
	}
}

// takeOverRace: nodes that race to take a released session over: exactly
// one wins, with epoch 2; each other finds it owned by the winner.
func (s *suite) takeOverRace(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 8)
	for range 5 {
		ss, l := create(t, ctx, n[0], nil)
		write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 1)})
		if err := n[0].Release(ctx, l); err != nil {
			t.Fatalf("Release: %v", err)
		}
		start := make(chan struct{})
		leases := make([]cluster.Lease, len(n))
		errs := make([]error, len(n))
		var wg sync.WaitGroup
		for i, nd := range n[1:] {
			wg.Go(func() {
				<-start
				leases[i+1], _, errs[i+1] = nd.TakeOver(ctx, ss.id, ss.token, nd.id)
			})
		}
		close(start)
		wg.Wait()
		var winner cluster.Lease
		for i := range n[1:] {
			if errs[i+1] == nil {
				if winner.Node != "" {
					t.Fatalf("both %s and %s took the session over", winner.Node, leases[i+1].Node)
				}
				winner = leases[i+1]
			}
		}
		if winner.Node == "" || winner.Epoch != 2 {
			t.Fatalf("no node won the race: %v (winner %+v)", errs, winner)
		}
		for i := range n[1:] {
			if errs[i+1] != nil {
				wantOwned(t, "TakeOver that lost the race", errs[i+1], winner.Node)
			}
		}
	}
}

// fencedWhileWriting: an owner that keeps writing and releasing while
// another node takes the session over: each of its writes is either in the
// state the new owner gets, or refused with ErrFenced, and after the
// takeover every write is refused. (A Release fences the lease itself, so
// the writes after the first Release are refused already.)
func (s *suite) fencedWhileWriting(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	n := s.long(t, 2)
	ss, l := create(t, ctx, n[0], nil)
	type result struct {
		stored uint64 // the writes that returned nil
		err    error  // what ended them
	}
	done := make(chan result, 1)
	go func() {
		var stored uint64
		for stored < 100000 {
			num := stored + 1
			err := n[0].Write(ctx, l, &session.Entry{First: num, Messages: text("m", int(num), int(num)), Received: num})
			if err == nil {
				stored = num
				err = n[0].Release(ctx, l)
			}
			if err != nil {
				done <- result{stored, err}
				return
			}
		}
		done <- result{stored, errors.New("100000 writes, none fenced")}
	}()
	defer func() {
		cancel()
		<-done
	}()
	l2, st := awaitTakeOver(t, ctx, n[1], ss, n[0].id)
	r := <-done
	done <- r
	if !errors.Is(r.err, cluster.ErrFenced) {
		t.Fatalf("the old owner's writes ended with %v, want %v", r.err, cluster.ErrFenced)
	}
	// Every write returned nil or ErrFenced: none is in doubt.
	wantState(t, st, r.stored, 0, r.stored, text("m", 1, int(r.stored)), nil, nil)
	write(t, ctx, n[1], l2, &session.Entry{First: r.stored + 1, Messages: text("new", int(r.stored)+1, int(r.stored)+1)})
}

// tampered returns k nodes and a session the first holds, with two
// messages, once tamper changed its state; without tamper, t skips.
func (s *suite) tampered(t *testing.T, tamper func(t *testing.T, id string), k int) (context.Context, []node, sess, cluster.Lease) {
	if tamper == nil {
		t.Skip("the harness cannot change a store's state by hand")
	}
	ctx := testContext(t)
	n := s.long(t, k)
	ss, l := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 2)})
	tamper(t, ss.id)
	return ctx, n, ss, l
}

// corrupt: state that does not decode gives ErrStateCorrupt from TakeOver
// and Write, and the failed TakeOver changed nothing: the next one fails
// alike, not with ErrOwned.
func (s *suite) corrupt(t *testing.T) {
	ctx, n, ss, l := s.tampered(t, s.h.Corrupt, 3)
	wantErr(t, "Write of corrupt state", n[0].Write(ctx, l, &session.Entry{First: 3, Messages: text("m", 3, 3)}), cluster.ErrStateCorrupt)
	if err := n[0].Release(ctx, l); err != nil && !errors.Is(err, cluster.ErrStateCorrupt) {
		t.Fatalf("Release of corrupt state: %v", err)
	}
	for _, nd := range n[1:] {
		_, _, err := nd.TakeOver(ctx, ss.id, ss.token, nd.id)
		wantErr(t, "TakeOver of corrupt state by "+nd.id, err, cluster.ErrStateCorrupt)
	}
}

// otherVersion: state written in another format version gives
// ErrStateVersion from every call.
func (s *suite) otherVersion(t *testing.T) {
	ctx, n, ss, l := s.tampered(t, s.h.OtherVersion, 2)
	_, _, err := n[1].TakeOver(ctx, ss.id, ss.token, n[1].id)
	wantErr(t, "TakeOver", err, cluster.ErrStateVersion)
	wantErr(t, "Write", n[0].Write(ctx, l, &session.Entry{First: 3, Messages: text("m", 3, 3)}), cluster.ErrStateVersion)
	wantErr(t, "Renew", n[0].Renew(ctx, l), cluster.ErrStateVersion)
	if errs := n[0].RenewAll(ctx, []cluster.Lease{l}); len(errs) != 1 || !errors.Is(errs[0], cluster.ErrStateVersion) {
		t.Fatalf("RenewAll = %v, want [%v]", errs, cluster.ErrStateVersion)
	}
	wantErr(t, "Release", n[0].Release(ctx, l), cluster.ErrStateVersion)
	wantErr(t, "Delete", n[0].Delete(ctx, l), cluster.ErrStateVersion)
	_, err = n[1].Create(ctx, ss.id, ss.token, n[1].id, nil)
	wantErr(t, "Create over state of another version", err, cluster.ErrStateExists)
}
