package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
)

type lostLease struct {
	lease cluster.Lease
	err   error
}

// TestRenewer checks that a Renewer keeps renewing its leases, and tells
// of those lost to a takeover or to the state's deletion, dropping them.
func TestRenewer(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, &redisstate.Options{LeaseTTL: 300 * time.Millisecond, ResumeWindow: time.Minute})
	lost := make(chan lostLease, 10)
	r := cluster.NewRenewer(s, func(l cluster.Lease, err error) { lost <- lostLease{l, err} }, nil)
	defer r.Close()
	var leases []cluster.Lease
	for i := range 3 {
		l, err := s.Create(ctx, fmt.Sprintf("nodeA.%d", i), token, "nodeA", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Add(l)
		leases = append(leases, l)
	}

	// Renewed: the lease's time to live, shortened here, goes up again.
	lease0 := "tether:{nodeA.0}:lease"
	const first = 200 * time.Millisecond
	if err := client.PExpire(ctx, lease0, first).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		ttl, err := client.PTTL(ctx, lease0).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl > first {
			break
		}
		sleep(ctx, t, 20*time.Millisecond)
	}

	// Lost to another node: its lease lapses (deleted here), nodeB takes
	// the session over before the Renewer sets the lease again.
	for {
		if err := client.Del(ctx, "tether:{nodeA.1}:lease").Err(); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.TakeOver(ctx, "nodeA.1", token, "nodeB")
		if err == nil {
			break
		}
		if !errors.Is(err, cluster.ErrOwned) {
			t.Fatalf("TakeOver = %v", err)
		}
	}
	// Lost to a deletion.
	if err := s.Delete(ctx, leases[2]); err != nil {
		t.Fatal(err)
	}
	want := map[string]error{"nodeA.1": cluster.ErrFenced, "nodeA.2": cluster.ErrNoState}
	for len(want) > 0 {
		select {
		case got := <-lost:
			if w, ok := want[got.lease.ID]; !ok || !errors.Is(got.err, w) || got.lease != leases[got.lease.ID[6]-'0'] {
				t.Fatalf("lost %+v, %v; want one of %v", got.lease, got.err, want)
			}
			delete(want, got.lease.ID)
		case <-ctx.Done():
			t.Fatalf("still not told of the loss of %v", want)
		}
	}
	if n := r.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1 (nodeA.0)", n)
	}
	r.Remove("nodeA.0")
	if n := r.Len(); n != 0 {
		t.Fatalf("Len after Remove = %d, want 0", n)
	}
}

// renewCounter is a Store that records the leases of each RenewAll and then
// calls during, before it returns.
type renewCounter struct {
	*redisstate.Store
	mu     sync.Mutex
	rounds [][]string // the session ids of each RenewAll
	during func(round int)
}

func (c *renewCounter) RenewAll(ctx context.Context, leases []cluster.Lease) []error {
	var ids []string
	for _, l := range leases {
		ids = append(ids, l.ID)
	}
	slices.Sort(ids)
	c.mu.Lock()
	c.rounds = append(c.rounds, ids)
	round := len(c.rounds)
	c.mu.Unlock()
	errs := c.Store.RenewAll(ctx, leases)
	c.during(round)
	return errs
}

// TestRenewerLeavesWrittenOut checks that a round of renewals leaves out a
// lease that a write extended since the previous round began (Extended),
// renews it again once no write did, and ignores Extended for a lease it
// does not hold; and that the first round leaves out a lease created after
// the Renewer was. The writes are made during the rounds, so that what each
// round leaves out does not depend on time; the created lease is checked
// only if it was created before the first round could begin.
func TestRenewerLeavesWrittenOut(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	store := newStore(t, client, &redisstate.Options{LeaseTTL: 300 * time.Millisecond, ResumeWindow: time.Minute})
	var written, idle cluster.Lease
	var err error
	if written, err = store.Create(ctx, "nodeA.written", token, "nodeA", nil); err != nil {
		t.Fatal(err)
	}
	if idle, err = store.Create(ctx, "nodeA.idle", token, "nodeA", nil); err != nil {
		t.Fatal(err)
	}
	const writtenRounds, rounds = 4, 7
	done := make(chan struct{})
	var failed error
	c := &renewCounter{Store: store}
	var r *cluster.Renewer
	c.during = func(round int) {
		switch {
		case round <= writtenRounds:
			// A write during rounds 1 to 4: rounds 2 to 5 leave the
			// lease out. A stale lease of the idle session changes
			// nothing.
			began := time.Now()
			if err := store.Write(ctx, written, &session.Entry{Received: uint64(round)}); err != nil {
				failed = err
			}
			r.Extended(written, began)
			r.Extended(cluster.Lease{ID: idle.ID, Node: idle.Node, Epoch: idle.Epoch + 1}, began)
		case round == rounds:
			close(done)
		}
	}
	lost := make(chan lostLease, 2)
	started := time.Now()
	r = cluster.NewRenewer(c, func(l cluster.Lease, err error) { lost <- lostLease{l, err} }, nil)
	began := time.Now()
	created, err := store.Create(ctx, "nodeA.created", token, "nodeA", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Add(created)
	r.Add(written)
	r.Add(idle)
	r.Extended(created, began)
	// The first round begins LeaseTTL/3 after NewRenewer at the earliest.
	createdFirst := time.Since(started) < 100*time.Millisecond
	select {
	case <-done:
	case l := <-lost:
		t.Fatalf("lost %+v: %v", l.lease, l.err)
	case <-ctx.Done():
		t.Fatal("timed out waiting for the renewals")
	}
	r.Close()
	if failed != nil {
		t.Fatalf("Write: %v", failed)
	}
	all, unwritten := []string{created.ID, idle.ID, written.ID}, []string{created.ID, idle.ID}
	want := [][]string{all, unwritten, unwritten, unwritten, unwritten, all, all}
	if createdFirst {
		want[0] = []string{idle.ID, written.ID}
	} else {
		t.Log("the first round may have begun before the lease was created: what it renewed is not checked")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !createdFirst {
		c.rounds[0] = want[0]
	}
	if !slices.EqualFunc(c.rounds[:rounds], want, slices.Equal) {
		t.Fatalf("rounds renewed %v, want %v", c.rounds[:rounds], want)
	}
	// The lease written and not renewed was kept all along.
	if owner, err := store.Owner(ctx, written.ID); owner != "nodeA" || err != nil {
		t.Fatalf("Owner = %q, %v; want nodeA", owner, err)
	}
}
