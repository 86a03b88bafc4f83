package cluster_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/brokertest"
	"github.com/tetherkit/tether/wire"
)

// tally is a Subscriber that adds what it is given to a count shared with
// the other subscribers of its benchmark.
type tally struct {
	id    string
	total *atomic.Int64
}

func (s *tally) ID() string               { return s.id }
func (s *tally) Deliver(*broker.Delivery) { s.total.Add(1) }

// BenchmarkBrokerFanout publishes to one topic whose 10,000 subscribers
// are on one node, or spread over three nodes of a MemoryBus; an operation
// is one publish delivered to every subscriber. It reports deliveries per
// second; compare nodes=3 with nodes=1:
//
//	go test -run '^$' -bench BrokerFanout -benchtime 200x ./cluster
func BenchmarkBrokerFanout(b *testing.B) {
	const subscribers = 10_000
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			ctx := context.Background()
			opts := brokertest.QuickOptions()
			opts.HeartbeatInterval = time.Second
			nodes := brokertest.Start(b, cluster.NewMemoryBus().Connect, n, opts)
			var total atomic.Int64
			for i := range subscribers {
				sub := &tally{id: fmt.Sprint("s", i), total: &total}
				if _, err := nodes[i%n].Broker.Subscribe(ctx, "prices", sub, nil); err != nil {
					b.Fatal(err)
				}
			}
			msg := wire.Message{Type: wire.Text, Data: []byte(`{"EURUSD":1.0842}`)}
			b.ResetTimer()
			for range b.N {
				if err := nodes[0].Broker.Publish(ctx, "prices", msg, nil); err != nil {
					b.Fatal(err)
				}
			}
			want := int64(b.N) * subscribers
			deadline := time.Now().Add(time.Minute)
			for total.Load() < want {
				if time.Now().After(deadline) {
					b.Fatalf("%d deliveries of %d after a minute", total.Load(), want)
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
