package session_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

func TestNew(t *testing.T) {
	info := session.RequestInfo{Header: http.Header{"X": {"y"}}, RemoteAddr: "10.0.0.1:5", Auth: "alice"}
	s := session.New(testConfig(), info, nil)
	defer s.Abort(wire.CloseError{Code: wire.StatusGoingAway})
	other := newSession(t, nil)
	if len(s.ID()) != 22 || len(s.Token()) != 22 {
		t.Errorf("ID(), Token() = %q, %q, want 22 characters each (128 bits, base64url)", s.ID(), s.Token())
	}
	if s.ID() == s.Token() || s.ID() == other.ID() || s.Token() == other.Token() {
		t.Errorf("ids and tokens repeat: %q %q %q %q", s.ID(), s.Token(), other.ID(), other.Token())
	}
	if got := s.Request(); got.RemoteAddr != info.RemoteAddr || got.Auth != "alice" || got.Header.Get("X") != "y" {
		t.Errorf("Request() = %+v, want %+v", got, info)
	}
	if s.Transport() != "" || s.Finished() || s.Err() != nil || s.Context().Err() != nil {
		t.Errorf("new session: Transport %q, Finished %v, Err %v, Context %v, want empty, open",
			s.Transport(), s.Finished(), s.Err(), s.Context().Err())
	}
}

// finishCounter counts onFinish calls.
type finishCounter struct{ n atomic.Int32 }

func (f *finishCounter) onFinish(*session.Local) { f.n.Add(1) }

func newCountedSession(t *testing.T, cfg *session.Config) (*session.Local, *finishCounter) {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	var f finishCounter
	s := session.New(cfg, session.RequestInfo{}, f.onFinish)
	t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusGoingAway}) })
	return s, &f
}

func TestCloseFromServer(t *testing.T) {
	s, fin := newCountedSession(t, nil)
	l := attach(t, s, session.AttachOptions{Transport: "test"})
	sendAll(t, s, "a", "b", "c")
	if err := s.Deliver(testContext(t), 1, texts("x", "y")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	if err := s.Close(wire.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("Close = %v", err)
	}
	want := wire.CloseError{Code: wire.StatusNormalClosure, Reason: "done"}
	if !errors.Is(s.Context().Err(), context.Canceled) {
		t.Errorf("Context().Err() after Close = %v, want context.Canceled", s.Context().Err())
	}
	if err := s.Close(wire.StatusGoingAway, "again"); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if s.Err() != want {
		t.Errorf("Err() after two Closes = %v, want %v", s.Err(), want)
	}

	// The queued messages go out first, in batches, then the close.
	b := pull(t, l, 1)
	if join(strs(b.Messages)) != "a" || b.Close != nil {
		t.Errorf("first Pull = %q close %v, want [a] and no close yet", strs(b.Messages), b.Close)
	}
	b = pull(t, l, 1<<20)
	if b.First != 2 || join(strs(b.Messages)) != "b,c" || b.Close == nil || *b.Close != want {
		t.Errorf("second Pull = %d %q close %v, want 2 [b c] close %v", b.First, strs(b.Messages), b.Close, want)
	}
	if _, err := l.Pull(testContext(t), longWait, 1<<20); !errors.Is(err, session.ErrFinished) {
		t.Errorf("Pull after the close = %v, want ErrFinished", err)
	}
	if s.Finished() {
		t.Errorf("Finished() before the link detached = true, want false")
	}

	// Recv hands out what arrived before the close, then the close.
	if got := join(recvAll(t, s, 2)); got != "x,y" {
		t.Errorf("Recv after Close = %q, want %q", got, "x,y")
	}
	if _, err := s.Recv(testContext(t)); err != want {
		t.Errorf("Recv after the queue = %v, want %v", err, want)
	}
	if err := s.Deliver(testContext(t), 3, texts("z")); err != want {
		t.Errorf("Deliver after Close = %v, want %v", err, want)
	}

	l.Detach()
	if !s.Finished() || fin.n.Load() != 1 {
		t.Errorf("after Detach: Finished() = %v, onFinish calls = %d, want true, 1", s.Finished(), fin.n.Load())
	}
	if _, err := s.Attach(session.AttachOptions{Received: 3}); !errors.Is(err, session.ErrUnknownSession) {
		t.Errorf("Attach after the session finished = %v, want ErrUnknownSession", err)
	}
	s.Abort(wire.CloseError{Code: wire.StatusInternalError})
	s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	if fin.n.Load() != 1 || s.Err() != want {
		t.Errorf("after Abort and CloseFromClient: onFinish calls = %d, Err() = %v, want 1, %v", fin.n.Load(), s.Err(), want)
	}
}

// TestCloseDetached checks a close while no link is attached: the next
// attach within the resume window gets the rest and the close.
// TestCloseRefusesInvalidCode checks that Close with a code no close frame
// may carry returns wire.ErrInvalidCloseCode, the error the Go client's
// Close returns for it, and leaves the session open.
func TestCloseRefusesInvalidCode(t *testing.T) {
	s := newSession(t, nil)
	for _, code := range []wire.StatusCode{0, 999, 1006, 2000, 5000} {
		if err := s.Close(code, ""); !errors.Is(err, wire.ErrInvalidCloseCode) {
			t.Errorf("Close(%d) = %v, want wire.ErrInvalidCloseCode", code, err)
		}
	}
	if s.Err() != nil || s.Context().Err() != nil {
		t.Errorf("after refused closes: Err %v, Context %v, want the session open", s.Err(), s.Context().Err())
	}
}

func TestCloseDetached(t *testing.T) {
	s, fin := newCountedSession(t, nil)
	sendAll(t, s, "a", "b")
	s.Close(4100, "app")
	l := attach(t, s, session.AttachOptions{Received: 1})
	b := pull(t, l, 1<<20)
	if b.First != 2 || join(strs(b.Messages)) != "b" || b.Close == nil || b.Close.Code != 4100 {
		t.Errorf("Pull = %d %q close %v, want 2 [b] close 4100", b.First, strs(b.Messages), b.Close)
	}
	l.Detach()
	if !s.Finished() || fin.n.Load() != 1 {
		t.Errorf("after Detach: Finished() = %v, onFinish calls = %d, want true, 1", s.Finished(), fin.n.Load())
	}
}

// TestCloseNotDelivered checks that a link that detaches before handing out
// the close frame leaves the session to wait for the client: the close is
// delivered on the next link.
func TestCloseNotDelivered(t *testing.T) {
	s, _ := newCountedSession(t, nil)
	sendAll(t, s, "a")
	l := attach(t, s, session.AttachOptions{})
	s.Close(wire.StatusNormalClosure, "")
	l.Detach()
	if s.Finished() {
		t.Fatalf("Finished() after a Detach before the close went out = true, want false")
	}
	l = attach(t, s, session.AttachOptions{})
	if b := pull(t, l, 1<<20); join(strs(b.Messages)) != "a" || b.Close == nil {
		t.Errorf("Pull on the next link = %q close %v, want [a] and the close", strs(b.Messages), b.Close)
	}
}

func TestCloseFromClient(t *testing.T) {
	s, fin := newCountedSession(t, nil)
	l := attach(t, s, session.AttachOptions{})
	sendAll(t, s, "never delivered")
	if err := s.Deliver(testContext(t), 1, texts("a", "b")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	ce := wire.CloseError{Code: 4100, Reason: "bye"}
	s.CloseFromClient(ce)
	if !s.Finished() || fin.n.Load() != 1 || s.Context().Err() == nil {
		t.Errorf("after CloseFromClient: Finished() = %v, onFinish calls = %d, Context().Err() = %v, want true, 1, canceled",
			s.Finished(), fin.n.Load(), s.Context().Err())
	}
	if _, err := l.Pull(testContext(t), longWait, 1<<20); !errors.Is(err, session.ErrFinished) {
		t.Errorf("Pull after CloseFromClient = %v, want ErrFinished", err)
	}
	if got := join(recvAll(t, s, 2)); got != "a,b" {
		t.Errorf("Recv after CloseFromClient = %q, want %q", got, "a,b")
	}
	if _, err := s.Recv(testContext(t)); err != ce {
		t.Errorf("Recv after the queue = %v, want %v", err, ce)
	}
	if err := s.Send(testContext(t), text("late")); err != ce {
		t.Errorf("Send after CloseFromClient = %v, want %v", err, ce)
	}
	if _, err := s.Attach(session.AttachOptions{}); !errors.Is(err, session.ErrUnknownSession) {
		t.Errorf("Attach after CloseFromClient = %v, want ErrUnknownSession", err)
	}
	s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	l.Detach()
	if fin.n.Load() != 1 {
		t.Errorf("onFinish calls = %d, want 1", fin.n.Load())
	}
}

// TestRecvWaitingClose checks that a Recv waiting on an empty queue
// returns the close.
func TestRecvWaitingClose(t *testing.T) {
	s := newSession(t, nil)
	done := make(chan error, 1)
	go func() {
		_, err := s.Recv(testContext(t))
		done <- err
	}()
	s.CloseFromClient(wire.CloseError{Code: wire.StatusGoingAway})
	wantClose(t, "waiting Recv after CloseFromClient", <-done, wire.StatusGoingAway)
}

// shortWindow is a resume window tests wait out with waitFinished; no test
// asserts that it took any particular time.
func shortWindow() *session.Config {
	cfg := testConfig()
	cfg.ResumeWindow = 50 * time.Millisecond
	return cfg
}

func TestResumeWindowExpires(t *testing.T) {
	s, fin := newCountedSession(t, shortWindow())
	l := attach(t, s, session.AttachOptions{})
	sendAll(t, s, "a")
	if err := s.Deliver(testContext(t), 1, texts("x")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	l.Detach()
	if s.Transport() != "" {
		t.Errorf("Transport() after Detach = %q, want empty", s.Transport())
	}
	waitFinished(t, s)
	wantClose(t, "Err() after the resume window", s.Err(), wire.StatusAbnormalClosure)
	if fin.n.Load() != 1 || s.Context().Err() == nil {
		t.Errorf("after expiry: onFinish calls = %d, Context().Err() = %v, want 1, canceled", fin.n.Load(), s.Context().Err())
	}
	if got := join(recvAll(t, s, 1)); got != "x" {
		t.Errorf("Recv after expiry = %q, want [x]", got)
	}
	_, err := s.Recv(testContext(t))
	wantClose(t, "Recv after the queue", err, wire.StatusAbnormalClosure)
	if _, err := s.Attach(session.AttachOptions{Received: 1}); !errors.Is(err, session.ErrUnknownSession) {
		t.Errorf("Attach after expiry = %v, want ErrUnknownSession", err)
	}
}

func TestResumeWindowNeverAttached(t *testing.T) {
	s, fin := newCountedSession(t, shortWindow())
	waitFinished(t, s)
	wantClose(t, "Err() of a session never attached", s.Err(), wire.StatusAbnormalClosure)
	if fin.n.Load() != 1 {
		t.Errorf("onFinish calls = %d, want 1", fin.n.Load())
	}
}

// TestFirstAttachWindow checks that a session no connection has attached
// to is given up after FirstAttachWindow, and one that had a connection
// waits out its ResumeWindow (an hour here) after it goes.
func TestFirstAttachWindow(t *testing.T) {
	cfg := testConfig()
	cfg.FirstAttachWindow = 50 * time.Millisecond
	s, fin := newCountedSession(t, cfg)
	waitFinished(t, s)
	wantClose(t, "Err() of a session never attached", s.Err(), wire.StatusAbnormalClosure)
	if fin.n.Load() != 1 {
		t.Errorf("onFinish calls = %d, want 1", fin.n.Load())
	}

	s2, _ := newCountedSession(t, cfg)
	attach(t, s2, session.AttachOptions{}).Detach()
	time.Sleep(4 * cfg.FirstAttachWindow) // outlive the first-attach window
	if s2.Finished() {
		t.Errorf("a session attached once ended %v after its connection went, within its resume window of %v", 4*cfg.FirstAttachWindow, cfg.ResumeWindow)
	}
}

// TestResumeWindowCloseExpires checks that a session closed by the server
// while no link is attached is given up after the window too, with the
// close as its error.
func TestResumeWindowCloseExpires(t *testing.T) {
	s, fin := newCountedSession(t, shortWindow())
	s.Close(4100, "app")
	waitFinished(t, s)
	wantClose(t, "Err()", s.Err(), 4100)
	if fin.n.Load() != 1 {
		t.Errorf("onFinish calls = %d, want 1", fin.n.Load())
	}
}

// TestResumeWindowAttach checks that an attach within the window stops
// the expiry: however long the link stays attached, the session stays.
// Attaching may lose the race with a slow machine's expiry; that is not
// what is tested, so the scenario is then tried again on a new session.
func TestResumeWindowAttach(t *testing.T) {
	cfg := shortWindow()
	for try := 0; ; try++ {
		if try == 20 {
			t.Skip("could not attach within the resume window")
		}
		s, fin := newCountedSession(t, cfg)
		l, err := s.Attach(session.AttachOptions{}) // stops the window New started
		if errors.Is(err, session.ErrUnknownSession) {
			continue
		}
		if err != nil {
			t.Fatalf("Attach = %v", err)
		}
		l.Detach() // starts a window
		l, err = s.Attach(session.AttachOptions{})
		if errors.Is(err, session.ErrUnknownSession) {
			continue
		}
		if err != nil {
			t.Fatalf("second Attach = %v", err)
		}
		time.Sleep(4 * cfg.ResumeWindow) // outlive both windows
		if s.Finished() || fin.n.Load() != 0 {
			t.Fatalf("attached session: Finished() = %v, onFinish calls = %d, want false, 0", s.Finished(), fin.n.Load())
		}
		l.Detach()
		waitFinished(t, s)
		return
	}
}

func TestAbortAttached(t *testing.T) {
	s, fin := newCountedSession(t, nil)
	l := attach(t, s, session.AttachOptions{})
	sendAll(t, s, "discarded")
	if err := s.Deliver(testContext(t), 1, texts("a")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	ce := wire.CloseError{Code: wire.StatusGoingAway, Reason: "shutdown"}
	s.Abort(ce)
	if s.Context().Err() == nil {
		t.Errorf("after Abort: Context().Err() = nil, want canceled")
	}
	if err := s.Send(testContext(t), wire.Message{Type: wire.Text}); err != ce {
		t.Errorf("Send after Abort = %v, want %v", err, ce)
	}
	b := pull(t, l, 1<<20)
	if len(b.Messages) != 0 || b.Close == nil || *b.Close != ce {
		t.Errorf("Pull after Abort = %q close %v, want only close %v", strs(b.Messages), b.Close, ce)
	}
	if _, err := l.Pull(testContext(t), longWait, 1<<20); !errors.Is(err, session.ErrFinished) {
		t.Errorf("Pull after the close = %v, want ErrFinished", err)
	}
	if got := join(recvAll(t, s, 1)); got != "a" {
		t.Errorf("Recv after Abort = %q, want [a]", got)
	}
	if _, err := s.Recv(testContext(t)); err != ce {
		t.Errorf("Recv after the queue = %v, want %v", err, ce)
	}
	l.Detach() // the close went out on l: the session is over
	if !s.Finished() || fin.n.Load() != 1 {
		t.Errorf("after the close was delivered: Finished() = %v, onFinish calls = %d, want true, 1", s.Finished(), fin.n.Load())
	}
	s.Abort(wire.CloseError{Code: wire.StatusInternalError})
	if fin.n.Load() != 1 || s.Err() != ce {
		t.Errorf("after a second Abort: onFinish calls = %d, Err() = %v, want 1, %v", fin.n.Load(), s.Err(), ce)
	}
}

// TestAbortDetached checks that a client not attached at the Abort learns
// the code on its next attach, whatever it had received of the discarded
// messages, and that a close not yet delivered wins over the Abort's.
func TestAbortDetached(t *testing.T) {
	for _, received := range []uint64{0, 1, 2} {
		s, fin := newCountedSession(t, nil)
		l := attach(t, s, session.AttachOptions{})
		sendAll(t, s, "a", "b")
		pull(t, l, 1) // "a" handed out, not acknowledged
		l.Detach()
		s.Close(4100, "first") // a close not yet delivered: Abort keeps it
		s.Abort(wire.CloseError{Code: wire.StatusGoingAway})
		wantClose(t, "Err() after Close then Abort", s.Err(), 4100)
		next, err := s.Attach(session.AttachOptions{Received: received})
		if err != nil {
			t.Fatalf("Attach(received %d) after Abort = %v, want the close frame", received, err)
		}
		b := pull(t, next, 1<<20)
		if len(b.Messages) != 0 || b.Close == nil || b.Close.Code != 4100 {
			t.Errorf("Attach(received %d) after Abort: Pull = %q close %v, want only close 4100", received, strs(b.Messages), b.Close)
		}
		next.Detach()
		if !s.Finished() || fin.n.Load() != 1 {
			t.Errorf("after the close was delivered: Finished() = %v, onFinish calls = %d, want true, 1", s.Finished(), fin.n.Load())
		}
	}
}

// TestAbortNobodyComes checks that an aborted session whose client never
// attaches again ends after two heartbeat intervals, not a whole resume
// window.
func TestAbortNobodyComes(t *testing.T) {
	cfg := testConfig()
	cfg.ResumeWindow = time.Hour
	cfg.HeartbeatInterval = 10 * time.Millisecond
	s, fin := newCountedSession(t, cfg)
	s.Abort(wire.CloseError{Code: wire.StatusInternalError})
	waitFinished(t, s)
	if fin.n.Load() != 1 {
		t.Errorf("onFinish calls = %d, want 1", fin.n.Load())
	}
}

// TestExpireShortens checks that Expire makes a session with an hour's
// window end soon after its link goes, and not while it is attached.
func TestExpireShortens(t *testing.T) {
	s, fin := newCountedSession(t, nil) // ResumeWindow: an hour
	l := attach(t, s, session.AttachOptions{})
	s.Expire(time.Millisecond)
	time.Sleep(20 * time.Millisecond) // many shortened windows
	if s.Finished() {
		t.Fatalf("Finished() while attached after Expire = true, want false")
	}
	l.Detach()
	waitFinished(t, s)
	wantClose(t, "Err() after Expire", s.Err(), wire.StatusAbnormalClosure)
	if fin.n.Load() != 1 {
		t.Errorf("onFinish calls = %d, want 1", fin.n.Load())
	}

	detached, _ := newCountedSession(t, nil)
	detached.Expire(time.Millisecond) // the window New started is cut short
	waitFinished(t, detached)
}

// TestExpireLonger checks that Expire never lengthens the window.
func TestExpireLonger(t *testing.T) {
	s, _ := newCountedSession(t, shortWindow())
	s.Expire(time.Hour)
	waitFinished(t, s)
}

// TestAbortOldLinks checks that only the link attached at the Abort hands
// out the close frame: a link superseded or detached before it is over,
// and its connection must not carry a close meant for the current one.
func TestAbortOldLinks(t *testing.T) {
	s := newSession(t, nil)
	detached := attach(t, s, session.AttachOptions{})
	detached.Detach()
	superseded := attach(t, s, session.AttachOptions{})
	current := attach(t, s, session.AttachOptions{})
	ce := wire.CloseError{Code: wire.StatusGoingAway, Reason: "shutdown"}
	s.Abort(ce)
	for _, l := range []struct {
		name string
		l    session.Link
	}{{"superseded", superseded}, {"detached", detached}} {
		b, err := l.l.Pull(testContext(t), longWait, 1<<20)
		if !errors.Is(err, session.ErrSuperseded) || b.Close != nil {
			t.Errorf("Pull on a %s link after Abort = %+v, %v, want ErrSuperseded", l.name, b, err)
		}
	}
	if b := pull(t, current, 1<<20); b.Close == nil || *b.Close != ce {
		t.Errorf("Pull on the attached link after Abort = %+v, want close %v", b, ce)
	}
}
