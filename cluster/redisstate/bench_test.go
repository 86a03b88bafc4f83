package redisstate_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// meter counts a client's round trips (commands and pipelines sent) and the
// bytes it writes to and reads from Redis.
type meter struct {
	trips, sent, received atomic.Int64
}

func (m *meter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &meteredConn{Conn: c, m: m}, nil
	}
}

func (m *meter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		m.trips.Add(1)
		return next(ctx, cmd)
	}
}

func (m *meter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		m.trips.Add(1)
		return next(ctx, cmds)
	}
}

// counts is what a meter counted.
type counts struct{ trips, sent, received int64 }

func (m *meter) counts() counts {
	return counts{m.trips.Load(), m.sent.Load(), m.received.Load()}
}

func (c counts) minus(o counts) counts {
	return counts{c.trips - o.trips, c.sent - o.sent, c.received - o.received}
}

// report adds the per-operation figures of total to b's results.
func report(b *testing.B, total counts) {
	n := float64(b.N)
	b.ReportMetric(float64(total.trips)/n, "roundtrips/op")
	b.ReportMetric(float64(total.sent)/n, "sent-B/op")
	b.ReportMetric(float64(total.received)/n, "recv-B/op")
}

type meteredConn struct {
	net.Conn
	m *meter
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.received.Add(int64(n))
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.m.sent.Add(int64(n))
	return n, err
}

// BenchmarkWrite measures one Entry of 64-byte messages that the same
// batch acknowledges as it goes (the steady state of a session whose
// client keeps up): Redis round trips and bytes each way per batch, and
// stored bytes per session.
func BenchmarkWrite(b *testing.B) {
	e := enginetest.RedisT(b)
	ctx := context.Background()
	var m meter
	client := redis.NewClient(&redis.Options{Addr: e.Addr})
	defer client.Close()
	client.AddHook(&m)
	s, err := redisstate.New(client, nil)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64)
	for _, c := range []struct {
		perBatch int
		offset   bool // the batch raises the offset of its topic, as a topic's messages do
	}{{1, false}, {16, false}, {128, false}, {1, true}, {16, true}} {
		perBatch := c.perBatch
		name := fmt.Sprintf("messages=%d", perBatch)
		if c.offset {
			name += "/topic-offset"
		}
		b.Run(name, func(b *testing.B) {
			sid := fmt.Sprintf("bench.%d.%v", perBatch, c.offset)
			l, err := s.Create(ctx, sid, token, "nodeA", make([]byte, 256))
			if err != nil {
				b.Fatal(err)
			}
			batch := &session.Entry{Messages: make([]wire.Message, perBatch), Subscribe: []string{"room"}}
			for i := range batch.Messages {
				batch.Messages[i] = wire.Message{Type: wire.Binary, Data: data}
			}
			next := uint64(1)
			write := func() {
				batch.First = next
				batch.Received = next
				next += uint64(perBatch)
				batch.Acked = batch.First - 1 // the previous batch
				if c.offset {
					batch.TopicOffsets = []session.TopicOffset{{Topic: "room", Offset: next - 1}}
				}
				if err := s.Write(ctx, l, batch); err != nil {
					b.Fatal(err)
				}
			}
			write() // the script is cached from now on
			start := m.counts()
			for b.Loop() {
				write()
			}
			report(b, m.counts().minus(start))
			var stored int64
			for _, part := range []string{"state", "out", "topics", "lease"} {
				n, err := client.MemoryUsage(ctx, "tether:{"+sid+"}:"+part).Result()
				if err != nil {
					b.Fatal(err)
				}
				stored += n
			}
			b.ReportMetric(float64(stored), "stored-B")
			if err := s.Delete(ctx, l); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkTakeOver measures taking over a session with 100 unacknowledged
// 64-byte messages: round trips and bytes each way, state included.
func BenchmarkTakeOver(b *testing.B) {
	e := enginetest.RedisT(b)
	ctx := context.Background()
	var m meter
	client := redis.NewClient(&redis.Options{Addr: e.Addr})
	defer client.Close()
	client.AddHook(&m)
	s, err := redisstate.New(client, nil)
	if err != nil {
		b.Fatal(err)
	}
	l, err := s.Create(ctx, id, token, "node0", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Write(ctx, l, &session.Entry{First: 1, Messages: messages(1, 100), Subscribe: []string{"a", "b"}}); err != nil {
		b.Fatal(err)
	}
	for i := range 2 { // the scripts are cached from now on
		if err := s.Release(ctx, l); err != nil {
			b.Fatal(err)
		}
		if l, _, err = s.TakeOver(ctx, id, token, fmt.Sprint("warm", i)); err != nil {
			b.Fatal(err)
		}
	}
	var total counts
	for b.Loop() {
		b.StopTimer()
		if err := s.Release(ctx, l); err != nil {
			b.Fatal(err)
		}
		start := m.counts()
		b.StartTimer()
		var st *cluster.State
		l, st, err = s.TakeOver(ctx, id, token, "nodeB")
		if err != nil || len(st.Out) != 100 {
			b.Fatal(err)
		}
		b.StopTimer()
		d := m.counts().minus(start)
		total = counts{total.trips + d.trips, total.sent + d.sent, total.received + d.received}
		b.StartTimer()
	}
	report(b, total)
}
