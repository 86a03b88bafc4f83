package natsstate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/natsstate"
	"github.com/tetherkit/tether/cluster/statetest"
	"github.com/tetherkit/tether/internal/enginetest"
)

// connect returns a connection to the nats-server at url, closed when t
// ends.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newStore returns a Store on a connection of its own to url.
func newStore(t testing.TB, url string, opts *natsstate.Options) *natsstate.Store {
	t.Helper()
	s, err := natsstate.New(testContext(t), connect(t, url), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// bucket returns the bucket of the stores with window: one per window,
// since a bucket's TTL is the window.
func bucket(window time.Duration) string { return fmt.Sprintf("statetest_%d", window.Milliseconds()) }

// TestConformance runs the StateStore conformance suite against a real
// nats-server with JetStream, each node with a connection of its own.
func TestConformance(t *testing.T) {
	e := enginetest.NATSJetStreamT(t)
	admin := connect(t, e.URL())
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	// tamper rewrites the session's value (in the long window's bucket,
	// the one the suite tampers in) with what change makes of it.
	tamper := func(change func(v []byte) []byte) func(t *testing.T, id string) {
		return func(t *testing.T, id string) {
			ctx := testContext(t)
			kv, err := js.KeyValue(ctx, bucket(statetest.LongWindow))
			if err != nil {
				t.Fatal(err)
			}
			e, err := kv.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(ctx, id, change(e.Value())); err != nil {
				t.Fatal(err)
			}
		}
	}
	statetest.Run(t, statetest.Harness{
		New: func(t *testing.T, leaseTTL, window time.Duration) cluster.StateStore {
			return newStore(t, e.URL(), &natsstate.Options{Bucket: bucket(window), LeaseTTL: leaseTTL, ResumeWindow: window})
		},
		// The value cut in the middle of its last message.
		Corrupt:      tamper(func(v []byte) []byte { return v[:len(v)-1] }),
		OtherVersion: tamper(func(v []byte) []byte { v[0] = natsstate.Version + 1; return v }),
	})
}
