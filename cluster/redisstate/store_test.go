package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

const (
	id    = "nodeA.AAAAAAAAAAAAAAAAAAAAAA"
	token = "the-token"
)

func newClient(t testing.TB, addr string) *redis.Client {
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	return client
}

func newStore(t testing.TB, client redis.UniversalClient, opts *redisstate.Options) *redisstate.Store {
	s, err := redisstate.New(client, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func text(s string) wire.Message { return wire.Message{Type: wire.Text, Data: []byte(s)} }

// messages returns n text messages "m<first>"... as numbered from first.
func messages(first, n int) []wire.Message {
	var ms []wire.Message
	for i := range n {
		ms = append(ms, text(fmt.Sprintf("m%d", first+i)))
	}
	return ms
}

// TestRoundTrip checks that what a node writes is what another node gets
// back when it takes the session over, and that the epoch grows.
func TestRoundTrip(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, nil)

	a, err := s.Create(ctx, id, token, "nodeA", []byte("negotiate\x00data"))
	if err != nil || a.Epoch != 1 {
		t.Fatalf("Create = %+v, %v; want epoch 1", a, err)
	}
	if _, err := s.Create(ctx, id, token, "nodeB", nil); !errors.Is(err, cluster.ErrStateExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	bin := wire.Message{Type: wire.Binary, Data: []byte{0, 1, 0xff, '\n'}}
	batches := []*session.Entry{
		{First: 1, Messages: append(messages(1, 2), bin), Received: 2, Subscribe: []string{"room:1", "a/b", "x y"}},
		{First: 4, Messages: messages(4, 2), Acked: 1, Received: 5, Unsubscribe: []string{"x y"}},
		{Acked: 2},
	}
	for _, b := range batches {
		if err := s.Write(ctx, a, b); err != nil {
			t.Fatalf("Write(%+v): %v", b, err)
		}
	}
	want := &cluster.State{
		ID: id, Sent: 5, Acked: 2, Received: 5,
		Out:    append([]wire.Message{bin}, messages(4, 2)...),
		Topics: []string{"a/b", "room:1"},
		Info:   []byte("negotiate\x00data"),
	}
	got, epoch, err := s.Load(ctx, id)
	if err != nil || epoch != 1 || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v, %d, %v; want %+v, 1", got, epoch, err, want)
	}
	if owner, err := s.Owner(ctx, id); owner != "nodeA" || err != nil {
		t.Fatalf("Owner = %q, %v; want nodeA", owner, err)
	}
	if err := s.Release(ctx, a); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if owner, err := s.Owner(ctx, id); owner != "" || err != nil {
		t.Fatalf("Owner after Release = %q, %v; want none", owner, err)
	}
	b, got, err := s.TakeOver(ctx, id, token, "nodeB")
	if err != nil || b.Epoch != 2 || b.Node != "nodeB" || !reflect.DeepEqual(got, want) {
		t.Fatalf("TakeOver = %+v, %+v, %v; want epoch 2 and %+v", b, got, err, want)
	}
	again, _, err := s.TakeOver(ctx, id, token, "nodeB")
	if err != nil || again != b {
		t.Fatalf("TakeOver by the owner again = %+v, %v; want %+v", again, err, b)
	}
	if err := s.Write(ctx, b, &session.Entry{First: 6, Messages: messages(6, 1), Acked: 5}); err != nil {
		t.Fatalf("new owner's Write: %v", err)
	}
	got, _, err = s.Load(ctx, id)
	if err != nil || got.Sent != 6 || got.Acked != 5 || !reflect.DeepEqual(got.Out, messages(6, 1)) {
		t.Fatalf("Load after the new owner's write = %+v, %v", got, err)
	}
	if err := s.Delete(ctx, b); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := s.Load(ctx, id); !errors.Is(err, cluster.ErrNoState) {
		t.Fatalf("Load after Delete = %v, want ErrNotFound", err)
	}
	if n, err := client.Exists(ctx, "tether:{"+id+"}:state", "tether:{"+id+"}:out", "tether:{"+id+"}:topics", "tether:{"+id+"}:lease").Result(); n != 0 || err != nil {
		t.Fatalf("keys left after Delete: %d, %v", n, err)
	}
}
