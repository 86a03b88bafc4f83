package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every blocking call a test makes.
const testTimeout = 10 * time.Second

// longWait is a Pull wait no test is meant to sit out: a Pull given it
// must return because something is ready, or the test's context fails it.
const longWait = time.Minute

// testConfig returns limits roomy enough that only the test's own settings
// matter. The long resume window never expires on its own during a test.
func testConfig() *session.Config {
	return &session.Config{
		HeartbeatInterval: time.Second,
		ResumeWindow:      time.Hour,
		MaxMessageBytes:   1 << 10,
		MaxQueuedBytes:    1 << 20,
		SlowConsumer:      session.SlowConsumerClose,
	}
}

// newSession returns a session with cfg (testConfig when nil) that is ended
// when the test ends, so that no resume timer outlives it.
func newSession(t *testing.T, cfg *session.Config) *session.Local {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	s := session.New(cfg, session.RequestInfo{}, nil)
	t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusGoingAway}) })
	return s
}

// testContext returns a context that ends when the test does, or after
// testTimeout.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func text(s string) wire.Message { return wire.Message{Type: wire.Text, Data: []byte(s)} }

func texts(ss ...string) []wire.Message {
	msgs := make([]wire.Message, len(ss))
	for i, s := range ss {
		msgs[i] = text(s)
	}
	return msgs
}

// strs returns the messages' data as strings.
func strs(msgs []wire.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Data)
	}
	return out
}

func sendAll(t *testing.T, s *session.Local, ss ...string) {
	t.Helper()
	ctx := testContext(t)
	for _, m := range ss {
		if err := s.Send(ctx, text(m)); err != nil {
			t.Fatalf("Send(%q) = %v, want nil", m, err)
		}
	}
}

func attach(t *testing.T, s *session.Local, opts session.AttachOptions) session.Link {
	t.Helper()
	l, err := s.Attach(opts)
	if err != nil {
		t.Fatalf("Attach(%+v) = %v, want nil", opts, err)
	}
	return l
}

// pull returns the next batch, which must be ready: the wait is longWait
// and the context ends first.
func pull(t *testing.T, l session.Link, maxBytes int) session.Batch {
	t.Helper()
	b, err := l.Pull(testContext(t), longWait, maxBytes)
	if err != nil {
		t.Fatalf("Pull = %v, want a batch", err)
	}
	return b
}

// recvAll reads n messages with Recv.
func recvAll(t *testing.T, s *session.Local, n int) []string {
	t.Helper()
	ctx := testContext(t)
	var got []string
	for range n {
		m, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv after %q = %v, want a message", got, err)
		}
		got = append(got, string(m.Data))
	}
	return got
}

// waitFinished polls until s has finished, failing the test after
// testTimeout. It asserts nothing about how long that took.
func waitFinished(t *testing.T, s *session.Local) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !s.Finished() {
		if time.Now().After(deadline) {
			t.Fatalf("session not finished after %v", testTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func join(ss []string) string { return strings.Join(ss, ",") }

// wantClose checks that err is a CloseError with code.
func wantClose(t *testing.T, what string, err error, code wire.StatusCode) {
	t.Helper()
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Errorf("%s = %v, want CloseError %d", what, err, code)
	}
}
