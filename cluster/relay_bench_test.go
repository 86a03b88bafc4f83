package cluster_test

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// countingBus counts what its node sends over the bus and receives back.
type countingBus struct {
	cluster.Bus
	requests, bytes *atomic.Int64
}

func (b countingBus) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	reply, err := b.Bus.Request(ctx, subject, data)
	b.requests.Add(1)
	b.bytes.Add(int64(len(data) + len(reply)))
	return reply, err
}

func (b countingBus) Publish(ctx context.Context, subject string, data []byte) error {
	b.bytes.Add(int64(len(data)))
	return b.Bus.Publish(ctx, subject, data)
}

// BenchmarkRelayEcho measures echo round trips of 64-byte text messages,
// 8 sessions at a time, on each transport, with every request after
// negotiate sent to the session's owner ("owner") or to another node,
// which relays it over a MemoryBus ("relayed"); both go through the same
// reverse proxy in front. Besides time and allocations (client, proxy and
// both nodes together), it reports the bus requests and bytes (request and
// reply) per round trip.
//
//	go test -run '^$' -bench RelayEcho -benchmem ./cluster/
func BenchmarkRelayEcho(b *testing.B) {
	for _, name := range transport.Names() {
		for _, relayed := range []bool{false, true} {
			mode := "owner"
			if relayed {
				mode = "relayed"
			}
			b.Run(name+"/"+mode, func(b *testing.B) { benchRelayEcho(b, name, relayed) })
		}
	}
}

func benchRelayEcho(b *testing.B, name string, relayed bool) {
	const clients = 8
	var requests, bytes atomic.Int64
	c := clustertest.Start(b, 3, relayEcho, &clustertest.Options{
		Bus: func(bus cluster.Bus) cluster.Bus { return countingBus{Bus: bus, requests: &requests, bytes: &bytes} },
		Route: func(r *http.Request) int {
			if relayed && path.Base(r.URL.Path) != "negotiate" {
				return 1
			}
			return 0
		},
	})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	ctx := context.Background()
	var sessions []*client.Session
	for range clients {
		s, err := client.Dial(ctx, c.URL, &client.Options{Transports: []string{name}, HTTPClient: hc,
			Logger: slog.New(slog.DiscardHandler), ConnectTimeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	defer func() {
		for _, s := range sessions {
			s.Close(wire.StatusNormalClosure, "")
		}
	}()
	msg := wire.Message{Type: wire.Text, Data: make([]byte, 64)}
	b.ReportAllocs()
	requests.Store(0)
	bytes.Store(0)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, s := range sessions {
		n := b.N / clients
		if i < b.N%clients {
			n++
		}
		wg.Go(func() {
			for range n {
				if err := s.Send(ctx, msg); err != nil {
					b.Error(err)
					return
				}
				if _, err := s.Recv(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(requests.Load())/float64(b.N), "bus-requests/op")
	b.ReportMetric(float64(bytes.Load())/float64(b.N), "bus-bytes/op")
}
