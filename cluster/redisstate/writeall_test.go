package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// nodeALeases creates sessions "n.0" to "n.<n-1>" owned by nodeA and
// returns their leases, of which nodeB has taken n.1 over (the lease is
// fenced) and n.2 is deleted (no state).
func nodeALeases(t *testing.T, ctx context.Context, s *redisstate.Store, n int) []cluster.Lease {
	t.Helper()
	var leases []cluster.Lease
	for i := range n {
		l, err := s.Create(ctx, fmt.Sprintf("n.%d", i), token, "nodeA", nil)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	if err := s.Release(ctx, leases[1]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeOver(ctx, "n.1", token, "nodeB"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, leases[2]); err != nil {
		t.Fatal(err)
	}
	return leases
}

// TestWriteAll checks that the writes of one WriteAll are each applied as
// Write applies it, on its own: those that fail (fenced, no state, out of
// order, invalid) change nothing and leave the others stored, on a Redis
// that has the script cached or not; and that a WriteAll sent again, as
// after an error, changes nothing more.
func TestWriteAll(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, nil)
	leases := nodeALeases(t, ctx, s, 6)
	invalid := &session.Entry{First: 1, Messages: messages(1, 1)}
	invalid.Messages[0].Type = 7
	writes := []cluster.StateWrite{
		{Lease: leases[0], Entry: &session.Entry{First: 1, Messages: messages(1, 3), Received: 2, Subscribe: []string{"t"}}},
		{Lease: leases[1], Entry: &session.Entry{First: 1, Messages: messages(1, 1)}},
		{Lease: leases[2], Entry: &session.Entry{First: 1, Messages: messages(1, 1)}},
		{Lease: leases[3], Entry: &session.Entry{First: 2, Messages: messages(2, 1)}},
		{Lease: leases[4], Entry: invalid},
		{Lease: cluster.Lease{Node: "nodeA", Epoch: 1}, Entry: &session.Entry{Received: 1}},
		{Lease: leases[5], Entry: &session.Entry{First: 1, Messages: messages(1, 2), Acked: 1, Received: 5}},
	}
	want := []error{nil, cluster.ErrFenced, cluster.ErrNoState, cluster.ErrOutOfOrder, cluster.ErrInvalidBatch, cluster.ErrInvalidSessionID, nil}
	for round := range 2 {
		if round == 0 {
			if err := client.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		errs := s.WriteAll(ctx, writes)
		if len(errs) != len(writes) {
			t.Fatalf("round %d: %d errors for %d writes", round, len(errs), len(writes))
		}
		for i := range want {
			if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
				t.Errorf("round %d: WriteAll's error %d (%s) = %v, want %v", round, i, writes[i].Lease.ID, errs[i], want[i])
			}
		}
	}
	for i, w := range []*cluster.State{
		{ID: "n.0", Sent: 3, Received: 2, Out: messages(1, 3), Topics: []string{"t"}, Info: []byte{}},
		nil, nil,
		{ID: "n.3", Out: []wire.Message{}, Info: []byte{}},
		{ID: "n.4", Out: []wire.Message{}, Info: []byte{}},
		nil,
		{ID: "n.5", Sent: 2, Acked: 1, Received: 5, Out: messages(2, 1), Info: []byte{}},
	} {
		if w == nil {
			continue
		}
		got, _, err := s.Load(ctx, w.ID)
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("write %d: Load = %+v, %v; want %+v", i, got, err, w)
		}
	}
}
