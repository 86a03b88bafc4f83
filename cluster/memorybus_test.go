package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
)

// connect returns n connections to one MemoryBus, closed when t ends.
func connect(t *testing.T, b *cluster.MemoryBus, n int) []cluster.Bus {
	t.Helper()
	conns := make([]cluster.Bus, n)
	for i := range conns {
		conns[i] = b.Connect()
		t.Cleanup(func() { conns[i].Close() })
	}
	return conns
}

// testContext returns a context that ends when t's deadline nears, or
// after a minute.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// receive waits for one message from ch within ctx.
func receive(t *testing.T, ctx context.Context, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case data := <-ch:
		return data
	case <-ctx.Done():
		t.Fatal("no message before the test's deadline")
		return nil
	}
}

// TestMemoryBusCloseVanishes checks that closing a connection takes its
// subscriptions and handlers off the bus at once, as a killed node's, and
// that a request its handler had in hand is never answered.
func TestMemoryBusCloseVanishes(t *testing.T) {
	ctx := testContext(t)
	conns := connect(t, cluster.NewMemoryBus(), 2)
	a, b := conns[0], conns[1]

	got := make(chan []byte, 1)
	if _, err := b.Subscribe(ctx, "t.s", func(data []byte) { got <- bytes.Clone(data) }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	entered := make(chan struct{})
	if _, err := b.Serve(ctx, "t.q", func(ctx context.Context, data []byte) []byte {
		close(entered)
		<-ctx.Done()
		return []byte("late")
	}); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// A request in the hands of b when b closes is never answered.
	lost := make(chan error, 1)
	lostCtx, cancelLost := context.WithCancel(ctx)
	defer cancelLost()
	go func() {
		_, err := a.Request(lostCtx, "t.q", nil)
		lost <- err
	}()
	<-entered
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := a.Request(ctx, "t.q", nil); !errors.Is(err, cluster.ErrNoResponders) {
		t.Errorf("Request to a closed connection's subject = %v, want ErrNoResponders", err)
	}
	if err := a.Publish(ctx, "t.s", []byte("x")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	cancelLost()
	if err := <-lost; !errors.Is(err, context.Canceled) {
		t.Errorf("Request in progress when the handler's connection closed = %v, want context.Canceled", err)
	}
	select {
	case data := <-got:
		t.Errorf("a closed connection's subscriber got %q", data)
	default:
	}
}

// TestMemoryBusSlowSubscriberDrops checks that a subscriber that falls
// behind by more than MemorySubscriberQueue messages misses the excess,
// counted by Dropped, and gets the rest in order.
func TestMemoryBusSlowSubscriberDrops(t *testing.T) {
	ctx := testContext(t)
	b := cluster.NewMemoryBus()
	conns := connect(t, b, 2)
	entered := make(chan struct{})
	release := make(chan struct{})
	got := make(chan []byte, cluster.MemorySubscriberQueue+1)
	first := true
	if _, err := conns[1].Subscribe(ctx, "t.s", func(data []byte) {
		if first {
			first = false
			close(entered)
			<-release
		}
		got <- bytes.Clone(data)
	}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	publish := func(i int) {
		if err := conns[0].Publish(ctx, "t.s", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	publish(0)
	<-entered
	const excess = 10
	for i := 1; i <= cluster.MemorySubscriberQueue+excess; i++ {
		publish(i)
	}
	if n := b.Dropped(); n != excess {
		t.Errorf("Dropped() = %d, want %d", n, excess)
	}
	close(release)
	for i := 0; i <= cluster.MemorySubscriberQueue; i++ {
		if data, want := receive(t, ctx, got), fmt.Sprint(i); string(data) != want {
			t.Fatalf("message %d = %q, want %q", i, data, want)
		}
	}
}

// TestMemoryBusMaxPayload checks that a MemoryBus's MaxPayload is what its
// connections enforce, on data and on replies.
func TestMemoryBusMaxPayload(t *testing.T) {
	ctx := testContext(t)
	b := cluster.NewMemoryBus()
	if b.MaxPayload != cluster.DefaultMaxPayload {
		t.Errorf("NewMemoryBus().MaxPayload = %d, want %d", b.MaxPayload, cluster.DefaultMaxPayload)
	}
	b.MaxPayload = 16
	conns := connect(t, b, 2)
	if n := conns[0].MaxPayload(); n != 16 {
		t.Errorf("MaxPayload() = %d, want 16", n)
	}
	if _, err := conns[1].Serve(ctx, "t.q", func(_ context.Context, data []byte) []byte {
		return bytes.Repeat(data, 2)
	}); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := conns[0].Publish(ctx, "t.s", make([]byte, 17)); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Publish of 17 bytes = %v, want ErrTooBig", err)
	}
	if reply, err := conns[0].Request(ctx, "t.q", make([]byte, 8)); err != nil || len(reply) != 16 {
		t.Errorf("Request of 8 bytes = %d bytes, %v; want 16 bytes", len(reply), err)
	}
	if _, err := conns[0].Request(ctx, "t.q", make([]byte, 9)); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Request answered with 18 bytes = %v, want ErrTooBig", err)
	}
}

var subjects = []struct {
	subject string
	valid   bool
}{
	{"tether.node.AbC-_9", true},
	{"a", true},
	{"", false},
	{".a", false},
	{"a.", false},
	{"a..b", false},
	{"a b", false},
	{"a*", false},
	{"a>", false},
	{"é", false},
}

// TestValidSubject checks the subject rules and that a MemoryBus refuses a
// subject that breaks them.
func TestValidSubject(t *testing.T) {
	ctx := testContext(t)
	bus := cluster.NewMemoryBus().Connect()
	defer bus.Close()
	for _, tc := range subjects {
		if got := cluster.ValidSubject(tc.subject); got != tc.valid {
			t.Errorf("ValidSubject(%q) = %v, want %v", tc.subject, got, tc.valid)
		}
		if err := bus.Publish(ctx, tc.subject, nil); (err == nil) != tc.valid {
			t.Errorf("Publish(%q) = %v, want error: %v", tc.subject, err, !tc.valid)
		}
	}
}
