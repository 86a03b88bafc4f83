package bustest

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
)

// BenchmarkPublish measures how many messages of 128 bytes one goroutine
// publishes on one connection and a subscriber on another connection
// receives, per second ("msgs/s"); the time per operation runs from the
// first Publish to the last message's arrival. Messages the subscriber
// missed (delivery is at most once) are reported as "lost".
func BenchmarkPublish(b *testing.B, connect func(tb testing.TB) cluster.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pub, sub := connect(b), connect(b)
	defer pub.Close()
	defer sub.Close()
	subject := "bustest." + randomID() + ".bench"
	var received atomic.Int64
	done := make(chan struct{}, 1)
	var want atomic.Int64
	s, err := sub.Subscribe(ctx, subject, func(data []byte) {
		if data[0] == 1 || received.Add(1) == want.Load() {
			select {
			case done <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		b.Fatalf("Subscribe: %v", err)
	}
	defer s.Close()
	data := make([]byte, 128)
	want.Store(int64(b.N))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if err := pub.Publish(ctx, subject, data); err != nil {
			b.Fatalf("Publish: %v", err)
		}
	}
	// A last marked message, published after the others, ends the wait
	// even when some were lost.
	data[0] = 1
	if err := pub.Publish(ctx, subject, data); err != nil {
		b.Fatalf("Publish: %v", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("%d of %d messages arrived", received.Load(), b.N)
	}
	for received.Load() < int64(b.N) {
		select {
		case <-done:
		case <-time.After(10 * time.Millisecond):
			// The marked message overtook nothing (order holds):
			// what has not arrived is lost.
			b.StopTimer()
			b.ReportMetric(float64(int64(b.N)-received.Load()), "lost")
			b.ReportMetric(float64(received.Load())/b.Elapsed().Seconds(), "msgs/s")
			return
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "lost")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRequest measures the round trip of a Request of 128 bytes to a
// handler on another connection that echoes it, one at a time, and reports
// the median and the 99th percentile ("p50-µs", "p99-µs").
func BenchmarkRequest(b *testing.B, connect func(tb testing.TB) cluster.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	req, srv := connect(b), connect(b)
	defer req.Close()
	defer srv.Close()
	subject := "bustest." + randomID() + ".bench"
	s, err := srv.Serve(ctx, subject, echo)
	if err != nil {
		b.Fatalf("Serve: %v", err)
	}
	defer s.Close()
	data := make([]byte, 128)
	rtts := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := req.Request(ctx, subject, data); err != nil {
			b.Fatalf("Request: %v", err)
		}
		rtts = append(rtts, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(rtts)
	b.ReportMetric(float64(rtts[len(rtts)/2])/float64(time.Microsecond), "p50-µs")
	b.ReportMetric(float64(rtts[len(rtts)*99/100])/float64(time.Microsecond), "p99-µs")
}
