package redisstate_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
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
