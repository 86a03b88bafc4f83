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
// queue. allocs/msg is per message (allocs/op per batch).
//
// The journaled runs give the session a Journal that stores nothing and
// returns at once: what write-through costs in the process (a goroutine
// that writes, and the wait for it), apart from the store's round trip.
// The budgeted runs give it a QueueBudget, as a server does by default.
func BenchmarkSendPull(b *testing.B) {
	for _, kind := range []string{"", "budgeted-", "journaled-"} {
		for _, batch := range []int{1, 32} {
			name := kind + map[int]string{1: "one-by-one", 32: "batches-of-32"}[batch]
			b.Run(name, func(b *testing.B) { benchSendPull(b, batch, kind) })
		}
	}
}

// nopJournal is a Journal that stores nothing.
type nopJournal struct{}

func (nopJournal) Write(context.Context, *session.Entry) error { return nil }

func benchSendPull(b *testing.B, batch int, kind string) {
	cfg := &session.Config{
		HeartbeatInterval: time.Minute,
		ResumeWindow:      time.Hour,
		MaxMessageBytes:   1 << 16,
		MaxQueuedBytes:    1 << 24,
	}
	journaled := kind == "journaled-"
	if kind == "budgeted-" {
		cfg.QueueBudget = session.NewQueueBudget(1 << 30)
	}
	var s *session.Local
	if journaled {
		s, _ = session.NewJournaled(cfg, session.RequestInfo{}, func(id, token string) (session.Journal, error) {
			return nopJournal{}, nil
		}, nil)
	} else {
		s = session.New(cfg, session.RequestInfo{}, nil)
	}
	defer s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
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
		// A journaled session hands out what is stored: the batch may
		// come in parts.
		for pulled := 0; pulled < batch; {
			got, err := l.Pull(ctx, time.Minute, 1<<20)
			if err != nil || len(got.Messages) == 0 || (!journaled && len(got.Messages) != batch) {
				b.Fatalf("Pull = %d messages, %v", len(got.Messages), err)
			}
			pulled += len(got.Messages)
		}
		sent += uint64(batch)
		if err := s.Acknowledge(sent); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(sent), "allocs/msg")
}

// BenchmarkDeliverRecv measures the path of client messages to an
// application that reads them with Recv, one at a time, with and without a
// QueueBudget (one atomic add as each is queued, one as it is read).
func BenchmarkDeliverRecv(b *testing.B) {
	for _, budgeted := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "budgeted"}[budgeted]
		b.Run(name, func(b *testing.B) {
			cfg := &session.Config{ResumeWindow: time.Hour}
			if budgeted {
				cfg.QueueBudget = session.NewQueueBudget(1 << 30)
			}
			s := session.New(cfg, session.RequestInfo{}, nil)
			defer s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
			ctx := context.Background()
			msgs := []wire.Message{{Type: wire.Text, Data: bytes.Repeat([]byte("x"), 64)}}
			b.ReportAllocs()
			seq := uint64(1)
			for b.Loop() {
				if err := s.Deliver(ctx, seq, msgs); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Recv(ctx); err != nil {
					b.Fatal(err)
				}
				seq++
			}
		})
	}
}
