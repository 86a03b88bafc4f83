package session_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestRestore checks that a restored session goes on where its state says:
// same id and token, the unacknowledged messages replayed with their
// numbers, new messages numbered after them, the client's duplicates
// dropped.
func TestRestore(t *testing.T) {
	r := session.Restored{ID: "nodeA.restored", Token: "tok", Acked: 5, Out: texts("f", "g", "h"), Received: 3}
	s, err := session.Restore(testConfig(), session.RequestInfo{}, r, nil)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusGoingAway}) })
	if s.ID() != r.ID || s.Token() != r.Token {
		t.Fatalf("ID, Token = %q, %q; want %q, %q", s.ID(), s.Token(), r.ID, r.Token)
	}
	l := attach(t, s, session.AttachOptions{Transport: "test", Received: 6})
	if b := pull(t, l, 1<<20); b.First != 7 || join(strs(b.Messages)) != "g,h" {
		t.Fatalf("Pull after attaching at 6 = %d %q, want 7 [g h]", b.First, strs(b.Messages))
	}
	sendAll(t, s, "i")
	if b := pull(t, l, 1<<20); b.First != 9 || join(strs(b.Messages)) != "i" {
		t.Fatalf("Pull after Send = %d %q, want 9 [i]", b.First, strs(b.Messages))
	}
	ctx := testContext(t)
	if err := s.Deliver(ctx, 2, texts("b", "c", "d")); err != nil {
		t.Fatalf("Deliver(2, b c d): %v", err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "d" {
		t.Fatalf("Recv = %q, %v; want d (b and c were received before the takeover)", m.Data, err)
	}
}

// TestRestoreReplay checks that a client that attaches with the stored
// acknowledged count is replayed every unacknowledged message, and that one
// beyond what was sent gets the resume gap.
func TestRestoreReplay(t *testing.T) {
	r := session.Restored{ID: "nodeA.replay", Token: "tok", Acked: 5, Out: texts("f", "g")}
	s, err := session.Restore(testConfig(), session.RequestInfo{}, r, nil)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusGoingAway}) })
	l := attach(t, s, session.AttachOptions{Transport: "test", Received: 5})
	if b := pull(t, l, 1<<20); b.First != 6 || join(strs(b.Messages)) != "f,g" {
		t.Fatalf("Pull = %d %q, want 6 [f g]", b.First, strs(b.Messages))
	}
	l = attach(t, s, session.AttachOptions{Transport: "test", Received: 9})
	if b := pull(t, l, 1<<20); b.Close == nil || b.Close.Code != wire.StatusResumeGap {
		t.Fatalf("Pull after attaching beyond what was sent = %+v, want close %d", b, wire.StatusResumeGap)
	}
}

// TestRestoreInvalid checks the state Restore refuses.
func TestRestoreInvalid(t *testing.T) {
	for _, r := range []session.Restored{
		{Token: "tok"},
		{ID: "id"},
		{ID: "id", Token: "tok", Out: []wire.Message{{Type: 7}}},
		{ID: "id", Token: "tok", Out: []wire.Message{{Type: wire.Text, Data: []byte{0xff}}}},
		{ID: "id", Token: "tok", Out: []wire.Message{{Type: wire.Binary, Data: make([]byte, session.DefaultMaxMessageBytes+1)}}},
	} {
		if s, err := session.Restore(nil, session.RequestInfo{}, r, nil); !errors.Is(err, session.ErrInvalidRestore) || s != nil {
			t.Errorf("Restore(%+v) = %v, %v; want ErrInvalidRestore", r, s, err)
		}
	}
}

// TestRestoreResumeWindow checks that a restored session waits for its
// client for the resume window, not the first-attach window of a new
// session: its client attached before, to the process that held it, and
// may take a while to come back after that process died.
func TestRestoreResumeWindow(t *testing.T) {
	cfg := testConfig()
	cfg.FirstAttachWindow = time.Nanosecond
	r, err := session.Restore(cfg, session.RequestInfo{}, session.Restored{ID: "n.restored", Token: "tok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure}) })
	fresh := session.New(cfg, session.RequestInfo{}, nil)
	waitFinished(t, fresh) // its first-attach window has passed
	if r.Finished() {
		t.Error("the restored session ended after the first-attach window")
	}
}
