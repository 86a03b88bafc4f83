package session_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// BenchmarkSendPull measures the send path a transport's writer drives:
// Session.Send, Link.Pull, and the client's acknowledgement that frees the
// queue. allocs/msg is per message (allocs/op per Pull).
func BenchmarkSendPull(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(map[int]string{1: "one-by-one", 32: "batches-of-32"}[batch], func(b *testing.B) {
			s := session.New(&session.Config{
				HeartbeatInterval: time.Minute,
				ResumeWindow:      time.Hour,
				MaxMessageBytes:   1 << 16,
				MaxQueuedBytes:    1 << 24,
			}, session.RequestInfo{}, nil)
			defer s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
			l, err := s.Attach(session.AttachOptions{Transport: "bench", AcksInBand: true})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			m := wire.Message{Type: wire.Text, Data: bytes.Repeat([]byte("x"), 64)}
			b.ReportAllocs()
			b.SetBytes(int64(len(m.Data)))
			var sent uint64
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				for range batch {
					if err := s.Send(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
				got, err := l.Pull(ctx, time.Minute, 1<<20)
				if err != nil || len(got.Messages) != batch {
					b.Fatalf("Pull = %d messages, %v", len(got.Messages), err)
				}
				sent += uint64(batch)
				if err := s.Acknowledge(sent); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(sent), "allocs/msg")
		})
	}
}
