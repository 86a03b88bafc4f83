package redisbus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/brokertest"
	"github.com/tetherkit/tether/cluster/bustest"
	"github.com/tetherkit/tether/cluster/redisbus"
	"github.com/tetherkit/tether/internal/enginetest"
)

// newClient returns a client of the redis-server at addr, closed when t
// ends.
func newClient(t testing.TB, addr string) *redis.Client {
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	return client
}

// newBus returns a Bus on client, closed when t ends.
func newBus(t testing.TB, client redis.UniversalClient, opts *redisbus.Options) *redisbus.Bus {
	t.Helper()
	b, err := redisbus.New(client, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestConformance runs the Bus conformance suite against a real
// redis-server, each node with a client of its own.
func TestConformance(t *testing.T) {
	e := enginetest.RedisT(t)
	bustest.Run(t, func(t *testing.T) cluster.Bus {
		return newBus(t, newClient(t, e.Addr), nil)
	})
}

// TestSharedClient runs the suite with every node on one client, as an
// application with one client per process does.
func TestSharedClient(t *testing.T) {
	e := enginetest.RedisT(t)
	client := newClient(t, e.Addr)
	bustest.Run(t, func(t *testing.T) cluster.Bus {
		return newBus(t, client, nil)
	})
}

// TestPrefix checks that buses with different prefixes do not hear each
// other on one Redis.
func TestPrefix(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := newClient(t, e.Addr)
	a := newBus(t, client, &redisbus.Options{Prefix: "cluster-a"})
	b := newBus(t, client, &redisbus.Options{Prefix: "cluster-b"})
	if _, err := a.Serve(ctx, "t.q", func(context.Context, []byte) []byte { return nil }); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := b.Request(ctx, "t.q", nil); !errors.Is(err, cluster.ErrNoResponders) {
		t.Errorf("Request across prefixes = %v, want ErrNoResponders", err)
	}
	if _, err := redisbus.New(client, &redisbus.Options{Prefix: "a{b}"}); err == nil {
		t.Error("New with Prefix a{b} = nil error, want one")
	}
}

// TestMalformed publishes garbage with a raw client on every channel the
// buses subscribe: each is dropped and counted, on request and reply
// channels alike, and the buses work on.
func TestMalformed(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := newClient(t, e.Addr)
	a, b := newBus(t, client, nil), newBus(t, client, nil)
	if _, err := a.Serve(ctx, "t.q", func(_ context.Context, data []byte) []byte { return data }); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	got := make(chan string, 10)
	if _, err := b.Subscribe(ctx, "t.s", func(data []byte) { got <- string(data) }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	channels, err := client.PubSubShardChannels(ctx, "*").Result()
	if err != nil {
		t.Fatalf("PUBSUB SHARDCHANNELS: %v", err)
	}
	var envelopes int
	garbage := []string{"", "Q", "R", "Q\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "R\x01\x07", "Q\x01\x00\xff\x7f", "Q\x01\x00\x05{x}.reply.ab", "hello"}
	for _, ch := range channels {
		if strings.Contains(ch, ".req.") || strings.Contains(ch, ".reply.") {
			envelopes++
		}
		for _, g := range garbage {
			if err := client.SPublish(ctx, ch, g).Err(); err != nil {
				t.Fatalf("SPUBLISH: %v", err)
			}
		}
	}
	if envelopes != 3 {
		t.Fatalf("%d request and reply channels in %q, want 3", envelopes, channels)
	}
	// What a subscriber gets is its own to parse: the garbage arrives as
	// it is.
	for _, want := range garbage {
		select {
		case data := <-got:
			if data != want {
				t.Errorf("subscriber got %q, want %q", data, want)
			}
		case <-ctx.Done():
			t.Fatal("the subscriber did not get the garbage")
		}
	}
	// A Request and its reply cross the same connections after the garbage,
	// so once they are back every garbage envelope was handled.
	for _, bus := range []*redisbus.Bus{a, b} {
		if reply, err := bus.Request(ctx, "t.q", []byte("still")); err != nil || string(reply) != "still" {
			t.Fatalf("Request after garbage = %q, %v", reply, err)
		}
	}
	if n, want := a.Malformed()+b.Malformed(), int64(envelopes*len(garbage)); n != want {
		t.Errorf("Malformed() = %d, want %d", n, want)
	}
}

// TestRestart kills redis-server under two buses: while it is down their
// calls fail with ErrUnavailable; once it has restarted on the same port,
// publish and request work again without any action of theirs.
func TestRestart(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := newBus(t, newClient(t, e.Addr), nil)
	b := newBus(t, newClient(t, e.Addr), nil)
	if _, err := a.Serve(ctx, "t.q", func(_ context.Context, data []byte) []byte { return data }); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	got := make(chan string, 100)
	if _, err := a.Subscribe(ctx, "t.s", func(data []byte) { got <- string(data) }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}

	e.Kill()
	if err := b.Publish(ctx, "t.s", []byte("down")); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Publish while Redis is down = %v, want ErrUnavailable", err)
	}
	if _, err := b.Request(ctx, "t.q", nil); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Request while Redis is down = %v, want ErrUnavailable", err)
	}
	if _, err := b.Subscribe(ctx, "t.other", func([]byte) {}); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Subscribe while Redis is down = %v, want ErrUnavailable", err)
	}
	if _, err := b.Serve(ctx, "t.other", func(context.Context, []byte) []byte { return nil }); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("Serve while Redis is down = %v, want ErrUnavailable", err)
	}

	if err := e.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	// Until a has resubscribed, a Request gets ErrNoResponders and a
	// publish reaches nobody; until b has, a reply is lost: retry both
	// until they work, within ctx.
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
		if err != lastErr {
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

// connectBench returns a Bus on a client of its own of the redis-server at
// addr, for the benchmarks.
func connectBench(addr string) func(tb testing.TB) cluster.Bus {
	return func(tb testing.TB) cluster.Bus { return newBus(tb, newClient(tb, addr), nil) }
}

// BenchmarkPublish measures publish throughput through a real
// redis-server.
func BenchmarkPublish(b *testing.B) {
	bustest.BenchmarkPublish(b, connectBench(enginetest.RedisT(b).Addr))
}

// BenchmarkRequest measures the round trip of a Request through a real
// redis-server.
func BenchmarkRequest(b *testing.B) {
	bustest.BenchmarkRequest(b, connectBench(enginetest.RedisT(b).Addr))
}

// TestBroker runs the cross-node checks of cluster.Broker against a real
// redis-server of its own, each node with a client of its own.
func TestBroker(t *testing.T) {
	e := enginetest.RedisT(t)
	brokertest.Run(t, func(t *testing.T) cluster.Bus {
		return newBus(t, newClient(t, e.Addr), nil)
	})
}

// TestCloseWhileDown checks that a Bus closes, and ends its goroutines,
// while Redis is down, and that a new Bus cannot be made then.
func TestCloseWhileDown(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := newClient(t, e.Addr)
	bus, err := redisbus.New(client, nil)
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
	if err := bus.Close(); err != nil {
		t.Errorf("Close while Redis is down = %v", err)
	}
	if _, err := redisbus.New(client, nil); !errors.Is(err, cluster.ErrUnavailable) {
		t.Errorf("New while Redis is down = %v, want ErrUnavailable", err)
	}
}
