package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
)

// fakeEndpoint is a session.Endpoint that records what a transport calls,
// in order, and answers Deliver and Attach as the test sets: the transports
// are written against the interface, not against the one-process session.
type fakeEndpoint struct {
	ctx        context.Context
	deliverErr error     // returned by Deliver
	link       *fakeLink // returned by Attach
	attachErr  error     // returned by Attach

	mu    sync.Mutex
	calls []string // guarded by mu
}

func newFakeEndpoint(t *testing.T) *fakeEndpoint {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &fakeEndpoint{ctx: ctx}
}

func (f *fakeEndpoint) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeEndpoint) recorded() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

func (f *fakeEndpoint) ID() string               { return "fake" }
func (f *fakeEndpoint) Context() context.Context { return f.ctx }
func (f *fakeEndpoint) Err() error               { return nil }
func (f *fakeEndpoint) Finished() bool           { return false }

func (f *fakeEndpoint) Attach(opts session.AttachOptions) (session.Link, error) {
	f.record("Attach(%s, %d)", opts.Transport, opts.Received)
	if f.attachErr != nil {
		return nil, f.attachErr
	}
	return f.link, nil
}

func (f *fakeEndpoint) Deliver(ctx context.Context, seq uint64, msgs []session.Message) error {
	var data []string
	for _, m := range msgs {
		data = append(data, string(m.Data))
	}
	f.record("Deliver(%d, %s)", seq, strings.Join(data, ","))
	return f.deliverErr
}

func (f *fakeEndpoint) Acknowledge(received uint64) error {
	f.record("Acknowledge(%d)", received)
	return nil
}

func (f *fakeEndpoint) Fault(ce session.CloseError) { f.record("Fault(%d)", ce.Code) }

func (f *fakeEndpoint) CloseFromClient(ce session.CloseError) {
	f.record("CloseFromClient(%d, %s)", ce.Code, ce.Reason)
}

// fakeLink hands out its batches one Pull at a time, then reports the link
// superseded.
type fakeLink struct {
	f       *fakeEndpoint
	batches []session.Batch
	done    chan struct{}
}

func (l *fakeLink) Pull(ctx context.Context, wait time.Duration, maxBytes int) (session.Batch, error) {
	if len(l.batches) == 0 {
		return session.Batch{}, session.ErrSuperseded
	}
	b := l.batches[0]
	l.batches = l.batches[1:]
	return b, nil
}

func (l *fakeLink) Collect(int, bool) (session.Batch, bool, error) {
	return session.Batch{}, false, errors.New("fakeLink: Collect is for transports told by Notify")
}

func (l *fakeLink) Done() <-chan struct{} { return l.done }
func (l *fakeLink) Detach()               { l.f.record("Detach") }

var sendConfig = &transport.Config{HeartbeatInterval: time.Second, MaxMessageBytes: 64, MaxBodyBytes: 1 << 10, WriteTimeout: time.Second}

// TestServeSendCallsEndpoint: one send body of an acknowledgement, three
// messages and a close frame reaches the endpoint as one Acknowledge, one
// Deliver numbered from the seq parameter, then CloseFromClient; what
// Deliver returns decides the status.
func TestServeSendCallsEndpoint(t *testing.T) {
	var body []byte
	body = transport.AppendBatchFrame(body, transport.AppendAck(nil, 7))
	for _, m := range []string{"a", "b", "c"} {
		body = transport.RawEncoding.AppendBatchMessage(body, session.Message{Type: session.Text, Data: []byte(m)})
	}
	body = transport.AppendBatchFrame(body, transport.AppendClose(nil, session.CloseError{Code: session.StatusNormalClosure, Reason: "bye"}))
	for _, tc := range []struct {
		name       string
		deliverErr error
		wantCode   int
		wantCalls  string
	}{
		{"accepted", nil, http.StatusNoContent, "Acknowledge(7); Deliver(5, a,b,c); CloseFromClient(1000, bye)"},
		{"gap", fmt.Errorf("deliver: %w", session.ErrSequenceGap), http.StatusConflict, "Acknowledge(7); Deliver(5, a,b,c)"},
		{"closed", session.CloseError{Code: session.StatusGoingAway}, http.StatusNotFound, "Acknowledge(7); Deliver(5, a,b,c)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeEndpoint(t)
			f.deliverErr = tc.deliverErr
			rec := httptest.NewRecorder()
			transport.ServeSend(rec, httptest.NewRequest(http.MethodPost, "/rt/send?seq=5", bytes.NewReader(body)), f, sendConfig)
			if rec.Code != tc.wantCode {
				t.Errorf("status = %d %q, want %d", rec.Code, rec.Body, tc.wantCode)
			}
			if got := f.recorded(); got != tc.wantCalls {
				t.Errorf("calls = %q, want %q", got, tc.wantCalls)
			}
		})
	}
}

// TestServeSendTooBigFaultsEndpoint: a body with a message over the limit
// delivers nothing and faults the session with 1009.
func TestServeSendTooBigFaultsEndpoint(t *testing.T) {
	body := transport.RawEncoding.AppendBatchMessage(nil, session.Message{Type: session.Text, Data: []byte("ok")})
	body = transport.RawEncoding.AppendBatchMessage(body, session.Message{Type: session.Binary, Data: make([]byte, 65)})
	f := newFakeEndpoint(t)
	rec := httptest.NewRecorder()
	transport.ServeSend(rec, httptest.NewRequest(http.MethodPost, "/rt/send?seq=1", bytes.NewReader(body)), f, sendConfig)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d %q, want 413", rec.Code, rec.Body)
	}
	if got, want := f.recorded(), "Fault(1009)"; got != want {
		t.Errorf("calls = %q, want %q", got, want)
	}
}

// TestServeStreamPullsFromLink: a stream attaches with the client's
// received count, writes each batch the Link hands out (a heartbeat for an
// empty one), ends with the epilogue once the Link is superseded, and
// detaches; an attach the endpoint refuses is answered as AttachError says.
func TestServeStreamPullsFromLink(t *testing.T) {
	f := newFakeEndpoint(t)
	f.link = &fakeLink{f: f, done: make(chan struct{}), batches: []session.Batch{
		{First: 4, Messages: []session.Message{{Type: session.Text, Data: []byte("x")}, {Type: session.Text, Data: []byte("y")}}},
		{},
		{First: 6, Messages: []session.Message{{Type: session.Text, Data: []byte("z")}}},
	}}
	st := &transport.Stream{Name: "test", ContentType: "text/plain", Prelude: []byte("prelude\n"), Encoder: lineEncoder{}, Epilogue: []byte("end\n")}
	a := &transport.Attach{Session: f, Received: 3, Config: &transport.Config{HeartbeatInterval: time.Hour, MaxBodyBytes: 1 << 10}}
	rec := httptest.NewRecorder()
	transport.ServeStream(rec, httptest.NewRequest(http.MethodGet, "/rt/test", nil), a, st)
	body, _ := io.ReadAll(rec.Body)
	want := "prelude\nctrl h\n4 x\n5 y\nctrl h\n6 z\nend\n"
	if string(body) != want {
		t.Errorf("stream = %q, want %q", body, want)
	}
	if got, want := f.recorded(), "Attach(test, 3); Detach"; got != want {
		t.Errorf("calls = %q, want %q", got, want)
	}

	f = newFakeEndpoint(t)
	f.attachErr = session.ErrStaleAttach
	rec = httptest.NewRecorder()
	transport.ServeStream(rec, httptest.NewRequest(http.MethodGet, "/rt/test", nil), &transport.Attach{Session: f, Received: 3, Config: a.Config}, st)
	if rec.Code != http.StatusConflict {
		t.Errorf("refused attach: status %d %q, want 409", rec.Code, rec.Body)
	}
}
