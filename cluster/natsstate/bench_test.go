package natsstate_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/tetherkit/tether/cluster/natsstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// report adds the per-operation messages and bytes each way of nc since
// start to b's results: each request (a compare-and-set, a read) is one
// message out and one in, so msgs-out/op counts round trips.
func report(b *testing.B, nc *nats.Conn, start nats.Statistics) {
	now := nc.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(now.OutMsgs-start.OutMsgs)/n, "msgs-out/op")
	b.ReportMetric(float64(now.OutBytes-start.OutBytes)/n, "sent-B/op")
	b.ReportMetric(float64(now.InBytes-start.InBytes)/n, "recv-B/op")
}

// BenchmarkWrite measures one Entry of 64-byte messages, in the steady
// state of a session whose client keeps up (each batch acknowledges the
// previous one) and of one whose client has 100 messages unacknowledged
// (each Write rewrites them): messages and bytes each way per batch.
func BenchmarkWrite(b *testing.B) {
	e := enginetest.NATSJetStreamT(b)
	ctx := context.Background()
	nc, err := nats.Connect(e.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	s, err := natsstate.New(ctx, nc, nil)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64)
	for _, c := range []struct {
		perBatch, behind int
	}{{1, 0}, {16, 0}, {128, 0}, {1, 100}} {
		b.Run(fmt.Sprintf("messages=%d/unacked=%d", c.perBatch, c.behind), func(b *testing.B) {
			sid := fmt.Sprintf("bench.%d-%d", c.perBatch, c.behind)
			l, err := s.Create(ctx, sid, "token", "nodeA", make([]byte, 256))
			if err != nil {
				b.Fatal(err)
			}
			msgs := slices.Repeat([]wire.Message{{Type: wire.Binary, Data: data}}, c.perBatch)
			next := uint64(1)
			write := func() {
				e := &session.Entry{First: next, Messages: msgs, Received: next, Subscribe: []string{"room"}}
				next += uint64(c.perBatch)
				e.Acked = max(e.First, uint64(c.behind)+1) - uint64(c.behind) - 1
				if err := s.Write(ctx, l, e); err != nil {
					b.Fatal(err)
				}
			}
			for next <= uint64(c.behind)+1 {
				write()
			}
			start := nc.Stats()
			for b.Loop() {
				write()
			}
			report(b, nc, start)
			if err := s.Delete(ctx, l); err != nil {
				b.Fatal(err)
			}
		})
	}
}
