package redisstate_test

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
)

// TestTrimOnAck checks that acknowledged messages leave Redis with the
// write that acknowledges them, that a batch written twice changes nothing
// the second time, and that a batch out of order is refused whole.
func TestTrimOnAck(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, nil)
	l, err := s.Create(ctx, id, token, "nodeA", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := "tether:{" + id + "}:out"
	b := &session.Entry{First: 1, Messages: messages(1, 10), Received: 3}
	for range 2 { // the second write is a retry: harmless
		if err := s.Write(ctx, l, b); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if n, err := client.XLen(ctx, out).Result(); n != 10 || err != nil {
			t.Fatalf("XLEN = %d, %v; want 10", n, err)
		}
	}
	for _, acked := range []uint64{3, 3, 9, 4} { // 4 after 9: counters only grow
		if err := s.Write(ctx, l, &session.Entry{Acked: acked}); err != nil {
			t.Fatalf("Write(Acked %d): %v", acked, err)
		}
	}
	if n, err := client.XLen(ctx, out).Result(); n != 1 || err != nil {
		t.Fatalf("XLEN after acknowledging 9 = %d, %v; want 1", n, err)
	}
	refused := []*session.Entry{
		{Acked: 11},                                       // beyond sent
		{First: 12, Messages: messages(12, 1)},            // gap after 10
		{First: 11, Messages: messages(11, 1), Acked: 13}, // acknowledges beyond the batch
	}
	for _, b := range refused {
		if err := s.Write(ctx, l, b); !errors.Is(err, cluster.ErrOutOfOrder) {
			t.Errorf("Write(%+v) = %v, want ErrOutOfOrder", b, err)
		}
	}
	invalid := []*session.Entry{
		{First: 0, Messages: messages(1, 1)},
		{First: 11, Messages: messages(11, 1)},
	}
	invalid[1].Messages[0].Type = 7
	for _, b := range invalid {
		if err := s.Write(ctx, l, b); !errors.Is(err, cluster.ErrInvalidBatch) {
			t.Errorf("Write(%+v) = %v, want ErrInvalidBatch", b, err)
		}
	}
	got, _, err := s.Load(ctx, id)
	want := &cluster.State{ID: id, Sent: 10, Acked: 9, Received: 3, Out: messages(10, 1), Info: []byte{}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	// Overlapping retry: 9-12 after 10 was stored appends 11 and 12 only.
	if err := s.Write(ctx, l, &session.Entry{First: 9, Messages: messages(9, 4), Acked: 12}); err != nil {
		t.Fatalf("overlapping Write: %v", err)
	}
	if got, _, err := s.Load(ctx, id); err != nil || got.Sent != 12 || got.Acked != 12 || len(got.Out) != 0 {
		t.Fatalf("Load after the overlapping write = %+v, %v", got, err)
	}
}

// TestStaleOwnerFenced checks that once another node took the session over,
// nothing the previous owner does changes the state, and that a current
// lease keeps other nodes out.
func TestStaleOwnerFenced(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	s := newStore(t, newClient(t, e.Addr), nil)
	a, err := s.Create(ctx, id, token, "nodeA", nil)
	if err != nil {
		t.Fatal(err)
	}
	var owned *cluster.OwnedError
	if _, _, err := s.TakeOver(ctx, id, token, "nodeB"); !errors.As(err, &owned) || owned.Node != "nodeA" || !errors.Is(err, cluster.ErrOwned) {
		t.Fatalf("TakeOver while nodeA's lease is current = %v, want OwnedError{nodeA}", err)
	}
	if _, _, err := s.TakeOver(ctx, id, "not-the-token", "nodeB"); !errors.Is(err, cluster.ErrBadToken) {
		t.Fatalf("TakeOver with a wrong token = %v, want ErrBadToken", err)
	}
	if err := s.Write(ctx, a, &session.Entry{First: 1, Messages: messages(1, 2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, a); err != nil { // what a lapsed lease looks like
		t.Fatal(err)
	}
	b, before, err := s.TakeOver(ctx, id, token, "nodeB")
	if err != nil || b.Epoch != 2 {
		t.Fatalf("TakeOver = %+v, %v", b, err)
	}
	stale := map[string]func() error{
		"Write":   func() error { return s.Write(ctx, a, &session.Entry{First: 3, Messages: messages(3, 1), Acked: 2}) },
		"Renew":   func() error { return s.Renew(ctx, a) },
		"Release": func() error { return s.Release(ctx, a) },
		"Delete":  func() error { return s.Delete(ctx, a) },
	}
	for name, f := range stale {
		if err := f(); !errors.Is(err, cluster.ErrFenced) {
			t.Errorf("stale owner's %s = %v, want ErrFenced", name, err)
		}
	}
	after, epoch, err := s.Load(ctx, id)
	if err != nil || epoch != 2 || !reflect.DeepEqual(after, before) {
		t.Fatalf("state after the stale owner's calls = %+v (epoch %d), %v; want %+v (epoch 2)", after, epoch, err, before)
	}
	if owner, err := s.Owner(ctx, id); owner != "nodeB" || err != nil {
		t.Fatalf("Owner = %q, %v; want nodeB", owner, err)
	}
	if _, _, err := s.TakeOver(ctx, id, token, "nodeA"); !errors.As(err, &owned) || owned.Node != "nodeB" {
		t.Fatalf("the stale owner's TakeOver while nodeB's lease is current = %v, want OwnedError{nodeB}", err)
	}
	if err := s.Renew(ctx, b); err != nil {
		t.Fatalf("the owner's Renew: %v", err)
	}
}

// TestTakeOverRace checks that of nodes racing to take the same session
// over, exactly one gets it and the others are told which one did.
func TestTakeOverRace(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	s := newStore(t, newClient(t, e.Addr), nil)
	l, err := s.Create(ctx, id, token, "node0", nil)
	if err != nil {
		t.Fatal(err)
	}
	const nodes = 8
	for round := range 20 {
		if err := s.Release(ctx, l); err != nil {
			t.Fatalf("round %d: Release: %v", round, err)
		}
		leases := make([]cluster.Lease, nodes)
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				leases[i], _, errs[i] = s.TakeOver(ctx, id, token, fmt.Sprintf("node%d", i+1))
			})
		}
		wg.Wait()
		winners := 0
		for i := range nodes {
			if errs[i] == nil {
				winners++
				l = leases[i]
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d nodes took the session over (%v), want 1", round, winners, errs)
		}
		if l.Epoch != uint64(round)+2 {
			t.Fatalf("round %d: epoch %d, want %d", round, l.Epoch, round+2)
		}
		for i, err := range errs {
			var owned *cluster.OwnedError
			if err != nil && (!errors.As(err, &owned) || owned.Node != l.Node) {
				t.Fatalf("round %d: node%d's TakeOver = %v, want OwnedError{%s}", round, i+1, err, l.Node)
			}
		}
	}
}

// TestRenewAll checks that one pipeline renews the current leases and
// answers ErrFenced, ErrNotFound and ErrInvalidID for the others, also on a
// Redis that has not cached the script.
func TestRenewAll(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, nil)
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	leases := nodeALeases(t, ctx, s, 4)
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	leases = append(leases, cluster.Lease{ID: "", Node: "nodeA", Epoch: 1})
	want := []error{nil, cluster.ErrFenced, cluster.ErrNoState, nil, cluster.ErrInvalidSessionID}
	for round := range 2 {
		errs := s.RenewAll(ctx, leases)
		for i := range want {
			if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
				t.Errorf("round %d: RenewAll's error %d (%s) = %v, want %v", round, i, leases[i].ID, errs[i], want[i])
			}
		}
	}
}

// TestFencedWhileWriting checks fencing under a race: an owner writes
// without pause while another node takes the session over; every write of
// the old owner that Redis accepted is in the state, none after the
// takeover is, and the new owner goes on from exactly there.
func TestFencedWhileWriting(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, nil)
	a, err := s.Create(ctx, id, token, "nodeA", nil)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan uint64, 1) // the last message the old owner wrote
	go func() {
		var n uint64
		for {
			err := s.Write(ctx, a, &session.Entry{First: n + 1, Messages: messages(int(n)+1, 1)})
			if err != nil {
				if !errors.Is(err, cluster.ErrFenced) && ctx.Err() == nil {
					t.Errorf("old owner's Write(%d) = %v, want nil or ErrFenced", n+1, err)
				}
				written <- n
				return
			}
			n++
		}
	}()
	for { // let the old owner write a while
		st, _, err := s.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Sent >= 50 {
			break
		}
		sleep(ctx, t, time.Millisecond)
	}
	var b cluster.Lease
	for { // the lease lapses (deleted here) and nodeB takes over
		if err := client.Del(ctx, "tether:{"+id+"}:lease").Err(); err != nil {
			t.Fatal(err)
		}
		if b, _, err = s.TakeOver(ctx, id, token, "nodeB"); err == nil {
			break
		}
		if !errors.Is(err, cluster.ErrOwned) {
			t.Fatalf("TakeOver = %v", err)
		}
	}
	var last uint64
	select {
	case last = <-written:
	case <-ctx.Done():
		t.Fatal("the old owner's writes were never refused")
	}
	st, epoch, err := s.Load(ctx, id)
	if err != nil || epoch != b.Epoch || st.Sent != last || len(st.Out) != int(last) {
		t.Fatalf("state = sent %d, %d messages, epoch %d, %v; want the old owner's %d messages, epoch %d", st.Sent, len(st.Out), epoch, err, last, b.Epoch)
	}
	for i, m := range st.Out {
		if want := fmt.Sprintf("m%d", i+1); string(m.Data) != want {
			t.Fatalf("message %d = %q, want %q", i+1, m.Data, want)
		}
	}
	if err := s.Write(ctx, b, &session.Entry{First: last + 1, Messages: messages(int(last)+1, 1), Acked: last + 1}); err != nil {
		t.Fatalf("new owner's Write: %v", err)
	}
	t.Logf("the old owner wrote %d messages before the takeover", last)
}
