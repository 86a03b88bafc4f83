package session_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestSendSharedKeepsData: SendShared queues the caller's bytes themselves,
// numbered with the session's other messages, and hands the link the Frames
// with them; messages of the session's own have none.
func TestSendSharedKeepsData(t *testing.T) {
	s := newSession(t, nil)
	frames := new(wire.Frames)
	shared := text("shared")
	sendAll(t, s, "own")
	if err := s.SendShared(shared, frames); err != nil {
		t.Fatalf("SendShared = %v, want nil", err)
	}
	sendAll(t, s, "own again")
	b := pull(t, attach(t, s, session.AttachOptions{Transport: "test"}), 1<<20)
	if got := join(strs(b.Messages)); got != "own,shared,own again" || b.First != 1 {
		t.Fatalf("batch = %d %q, want 1 %q", b.First, got, "own,shared,own again")
	}
	if &b.Messages[1].Data[0] != &shared.Data[0] {
		t.Error("SendShared copied the message's data; want the caller's bytes")
	}
	for i, want := range []*wire.Frames{nil, frames, nil} {
		if got := b.SharedFrames(i); got != want {
			t.Errorf("SharedFrames(%d) = %p, want %p", i, got, want)
		}
	}
}

// TestSendSharedChecks: SendShared refuses what Send refuses, and a closed
// session's CloseError.
func TestSendSharedChecks(t *testing.T) {
	for _, tt := range sendErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(t, nil)
			if err := s.SendShared(tt.msg, nil); !errors.Is(err, tt.want) {
				t.Fatalf("SendShared(%v %q) = %v, want %v", tt.msg.Type, tt.msg.Data, err, tt.want)
			}
		})
	}
	s := newSession(t, nil)
	s.Close(wire.StatusNormalClosure, "done")
	wantClose(t, "SendShared after Close", s.SendShared(text("x"), nil), wire.StatusNormalClosure)
}

// TestSendSharedSlowConsumer: over MaxQueuedBytes, SendShared drops under
// SlowConsumerDrop and closes with 4002 under SlowConsumerClose and under
// SlowConsumerBlock, never waiting.
func TestSendSharedSlowConsumer(t *testing.T) {
	for _, tt := range []struct {
		policy session.SlowConsumerPolicy
		want   error
	}{
		{session.SlowConsumerClose, wire.CloseError{Code: wire.StatusSlowConsumer, Reason: "slow consumer"}},
		{session.SlowConsumerDrop, session.ErrDropped},
		{session.SlowConsumerBlock, wire.CloseError{Code: wire.StatusSlowConsumer, Reason: "slow consumer"}},
	} {
		t.Run(tt.policy.String(), func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxQueuedBytes = 2 * (1 + session.MessageOverhead)
			cfg.SlowConsumer = tt.policy
			s := newSession(t, cfg)
			for i := range 2 {
				if err := s.SendShared(text("x"), nil); err != nil {
					t.Fatalf("SendShared #%d = %v, want nil", i, err)
				}
			}
			if err := s.SendShared(text("x"), nil); !errors.Is(err, tt.want) {
				t.Fatalf("SendShared over the limit = %v, want %v", err, tt.want)
			}
			if sent, _ := s.Sent(); tt.policy == session.SlowConsumerDrop && (sent != 2 || s.Dropped() != 1) {
				t.Errorf("after the drop: sent %d, dropped %d; want 2, 1", sent, s.Dropped())
			}
		})
	}
}

// TestNotifyShared: a message queued by SendShared is announced through
// NotifyShared, on SendShared's goroutine without the session's lock held
// (the callback collects it there), and not through Notify; a message of
// the session's own goes through Notify.
func TestNotifyShared(t *testing.T) {
	s := newSession(t, nil)
	var ln session.Link
	var notified, shared int
	var collected []string
	ln = attach(t, s, session.AttachOptions{
		Transport: "test",
		Notify:    func() { notified++ },
		NotifyShared: func() {
			shared++
			b, err := ln.Collect(1 << 20)
			if err != nil {
				t.Errorf("Collect in NotifyShared = %v", err)
			}
			collected = append(collected, strs(b.Messages)...)
		},
	})
	if err := s.SendShared(text("shared"), new(wire.Frames)); err != nil {
		t.Fatalf("SendShared = %v, want nil", err)
	}
	if shared != 1 || notified != 0 || join(collected) != "shared" {
		t.Fatalf("after SendShared: NotifyShared %d times, Notify %d, collected %q; want 1, 0, %q", shared, notified, join(collected), "shared")
	}
	sendAll(t, s, "own")
	if shared != 1 || notified != 1 {
		t.Fatalf("after Send: NotifyShared %d times, Notify %d; want 1, 1", shared, notified)
	}
}

// TestFramesBuiltOnce: concurrent connections asking for the same framing
// get the bytes of one build; another framing is built apart.
func TestFramesBuiltOnce(t *testing.T) {
	type framing int
	var f wire.Frames
	var builds atomic.Int32
	build := func(s string) func() []byte {
		return func() []byte { builds.Add(1); return []byte(s) }
	}
	var wg sync.WaitGroup
	got := make([][]byte, 16)
	for i := range got {
		wg.Go(func() { got[i] = f.Frame(framing(1), build("one")) })
	}
	wg.Wait()
	for i := range got {
		if string(got[i]) != "one" || &got[i][0] != &got[0][0] {
			t.Fatalf("Frame #%d = %q at %p, want the shared %q", i, got[i], &got[i][0], "one")
		}
	}
	if two := f.Frame(framing(2), build("two")); string(two) != "two" {
		t.Fatalf("Frame(2) = %q, want %q", two, "two")
	}
	if again := f.Frame(framing(1), build("other")); string(again) != "one" {
		t.Fatalf("Frame(1) again = %q, want %q", again, "one")
	}
	if n := builds.Load(); n != 2 {
		t.Fatalf("%d builds, want 2", n)
	}
	var none *wire.Frames
	if b := none.Frame(framing(1), build("fresh")); string(b) != "fresh" {
		t.Fatalf("nil Frames: Frame = %q, want %q", b, "fresh")
	}
}
