package natsbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/brokertest"
	"github.com/tetherkit/tether/cluster/bustest"
	"github.com/tetherkit/tether/cluster/natsbus"
	"github.com/tetherkit/tether/internal/enginetest"
)

// connect returns a connection to the nats-server at url that reconnects
// for as long as it runs, as package natsbus asks of a node's, closed when
// t ends.
func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newBus returns a Bus on nc, closed when t ends.
func newBus(t testing.TB, nc *nats.Conn, opts *natsbus.Options) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.New(nc, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestConformance runs the Bus conformance suite against a real
// nats-server, each node with a connection of its own.
func TestConformance(t *testing.T) {
	e := enginetest.NATST(t)
	bustest.Run(t, func(t *testing.T) cluster.Bus {
		return newBus(t, connect(t, e.URL()), nil)
	})
}

// TestSharedConnection runs the suite with every node on one connection.
func TestSharedConnection(t *testing.T) {
	e := enginetest.NATST(t)
	nc := connect(t, e.URL())
	bustest.Run(t, func(t *testing.T) cluster.Bus {
		return newBus(t, nc, nil)
	})
}

// TestMaxPayload checks that MaxPayload is the server's limit less the
// room for headers, the limit of a MemoryBus, and that Options may lower
// it but not raise it.
func TestMaxPayload(t *testing.T) {
	e := enginetest.NATST(t)
	nc := connect(t, e.URL())
	if n := newBus(t, nc, nil).MaxPayload(); n != cluster.DefaultMaxPayload {
		t.Errorf("MaxPayload() = %d, want cluster.DefaultMaxPayload (%d)", n, cluster.DefaultMaxPayload)
	}
	if n := newBus(t, nc, &natsbus.Options{MaxPayload: 1000}).MaxPayload(); n != 1000 {
		t.Errorf("MaxPayload() with Options.MaxPayload 1000 = %d", n)
	}
	if n := newBus(t, nc, &natsbus.Options{MaxPayload: 1 << 30}).MaxPayload(); n != cluster.DefaultMaxPayload {
		t.Errorf("MaxPayload() with Options.MaxPayload 1 GiB = %d, want %d", n, cluster.DefaultMaxPayload)
	}
}

// TestPrefix checks that buses with different prefixes do not hear each
// other on one NATS, and that a bad prefix is refused.
func TestPrefix(t *testing.T) {
	e := enginetest.NATST(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc := connect(t, e.URL())
	a := newBus(t, nc, &natsbus.Options{Prefix: "cluster-a"})
	b := newBus(t, nc, &natsbus.Options{Prefix: "cluster-b"})
	if _, err := a.Serve(ctx, "t.q", func(context.Context, []byte) []byte { return nil }); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := b.Request(ctx, "t.q", nil); !errors.Is(err, cluster.ErrNoResponders) {
		t.Errorf("Request across prefixes = %v, want ErrNoResponders", err)
	}
	for _, prefix := range []string{"a b", "a.>", "a..b"} {
		if _, err := natsbus.New(nc, &natsbus.Options{Prefix: prefix}); err == nil {
			t.Errorf("New with Prefix %q = nil error, want one", prefix)
		}
	}
}

// TestMalformed publishes what is not a request on a request subject with
// a raw connection: each is dropped and counted, and the bus works on.
// Garbage on a publish subject reaches the subscriber as it is.
func TestMalformed(t *testing.T) {
	e := enginetest.NATST(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus := newBus(t, connect(t, e.URL()), nil)
	if _, err := bus.Serve(ctx, "t.q", func(_ context.Context, data []byte) []byte { return data }); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	got := make(chan string, 10)
	if _, err := bus.Subscribe(ctx, "t.s", func(data []byte) { got <- string(data) }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	raw := connect(t, e.URL())
	garbage := []*nats.Msg{
		{Subject: "tether.req.t.q", Data: []byte("no reply subject")},
		{Subject: "tether.req.t.q", Reply: "somewhere", Header: nats.Header{"Tether-Timeout": {"soon"}}},
		{Subject: "tether.req.t.q", Reply: "somewhere", Header: nats.Header{"Tether-Timeout": {"-5"}}},
		{Subject: "tether.req.t.q", Reply: "somewhere", Header: nats.Header{"Tether-Timeout": {"99999999999999999999"}}},
	}
	for _, m := range garbage {
		if err := raw.PublishMsg(m); err != nil {
			t.Fatalf("PublishMsg: %v", err)
		}
	}
	if err := raw.Publish("tether.pub.t.s", []byte("\xff garbage")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case data := <-got:
		if data != "\xff garbage" {
			t.Errorf("subscriber got %q", data)
		}
	case <-ctx.Done():
		t.Fatal("the subscriber did not get the garbage")
	}
	// The request follows the garbage on the same subscription, so once
	// it is answered every piece of garbage was handled.
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	if reply, err := bus.Request(ctx, "t.q", []byte("still")); err != nil || string(reply) != "still" {
		t.Fatalf("Request after garbage = %q, %v", reply, err)
	}
	if n := bus.Malformed(); n != int64(len(garbage)) {
		t.Errorf("Malformed() = %d, want %d", n, len(garbage))
	}
}

// TestRestart kills nats-server under two buses: while it is down their
// calls fail with ErrUnavailable; once it has restarted on the same port,
// publish and request work again without any action of theirs.
func TestRestart(t *testing.T) {
	e := enginetest.NATST(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	disconnected := make(chan struct{}, 1)
	a := newBus(t, connect(t, e.URL()), nil)
	b := newBus(t, connect(t, e.URL(), nats.DisconnectErrHandler(func(*nats.Conn, error) {
		select {
		case disconnected <- struct{}{}:
		default:
		}
	})), nil)
	if _, err := a.Serve(ctx, "t.q", func(_ context.Context, data []byte) []byte { return data }); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	got := make(chan string, 100)
	if _, err := a.Subscribe(ctx, "t.s", func(data []byte) { got <- string(data) }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}

	e.Kill()
	select {
	case <-disconnected:
	case <-ctx.Done():
		t.Fatal("the connection never noticed that the server died")
	}
	if err := b.Publish(ctx, "t.s", []byte("down")); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Publish while NATS is down = %v, want ErrUnavailable", err)
	}
	if _, err := b.Request(ctx, "t.q", nil); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Request while NATS is down = %v, want ErrUnavailable", err)
	}
	if _, err := b.Subscribe(ctx, "t.other", func([]byte) {}); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Subscribe while NATS is down = %v, want ErrUnavailable", err)
	}
	if _, err := b.Serve(ctx, "t.other", func(context.Context, []byte) []byte { return nil }); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Serve while NATS is down = %v, want ErrUnavailable", err)
	}

	if err := e.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	// Until both connections are back and a's subscriptions with them, a
	// Request fails: retry it (each attempt bounded, as a reply may be
	// lost) until it works, within ctx.
	var lastErr error
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		reply, err := b.Request(attempt, "t.q", []byte("back"))
		cancelAttempt()
		if err == nil && string(reply) == "back" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Request never worked again after the restart: %v", lastErr)
		}
		if err != nil && (lastErr == nil || err.Error() != lastErr.Error()) {
			t.Logf("after the restart: %v", err)
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("Request works again %v after the restart", time.Since(restarted).Round(time.Millisecond))
	for {
		if err := b.Publish(ctx, "t.s", []byte("back")); err != nil {
			t.Fatalf("Publish after the restart: %v", err)
		}
		select {
		case data := <-got:
			if data != "back" {
				t.Fatalf("subscriber got %q, want back", data)
			}
			t.Logf("Publish works again %v after the restart", time.Since(restarted).Round(time.Millisecond))
			return
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the subscription never got a message after the restart")
		}
	}
}

// connectBench returns a Bus on a connection of its own to the
// nats-server at url, for the benchmarks.
func connectBench(url string) func(tb testing.TB) cluster.Bus {
	return func(tb testing.TB) cluster.Bus { return newBus(tb, connect(tb, url), nil) }
}

// BenchmarkPublish measures publish throughput through a real nats-server.
func BenchmarkPublish(b *testing.B) {
	bustest.BenchmarkPublish(b, connectBench(enginetest.NATST(b).URL()))
}

// BenchmarkRequest measures the round trip of a Request through a real
// nats-server.
func BenchmarkRequest(b *testing.B) {
	bustest.BenchmarkRequest(b, connectBench(enginetest.NATST(b).URL()))
}

// TestBroker runs the cross-node checks of cluster.Broker against a real
// nats-server of its own, each node with a connection of its own.
func TestBroker(t *testing.T) {
	e := enginetest.NATST(t)
	brokertest.Run(t, func(t *testing.T) cluster.Bus {
		return newBus(t, connect(t, e.URL()), nil)
	})
}

// TestCloseWhileDown checks that a Bus closes, and ends its goroutines,
// while the connection is down.
func TestCloseWhileDown(t *testing.T) {
	e := enginetest.NATST(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	disconnected := make(chan struct{}, 1)
	nc := connect(t, e.URL(), nats.DisconnectErrHandler(func(*nats.Conn, error) {
		select {
		case disconnected <- struct{}{}:
		default:
		}
	}))
	bus, err := natsbus.New(nc, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := bus.Subscribe(ctx, "t.s", func([]byte) {}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, err := bus.Serve(ctx, "t.q", func(context.Context, []byte) []byte { return nil }); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	e.Kill()
	select {
	case <-disconnected:
	case <-ctx.Done():
		t.Fatal("the connection never noticed that the server died")
	}
	if err := bus.Close(); err != nil {
		t.Errorf("Close while NATS is down = %v", err)
	}
}
