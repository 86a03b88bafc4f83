package transport_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/endpointtest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

var sendConfig = &transport.Config{HeartbeatInterval: time.Second, MaxMessageBytes: 64, MaxBodyBytes: 1 << 10, WriteTimeout: time.Second}

// TestServeSendCallsEndpoint: one send body of an acknowledgement, three
// messages and a close frame reaches a fake endpoint as one Acknowledge,
// one Deliver numbered from the seq parameter, then CloseFromClient; what
// Deliver returns decides the status.
func TestServeSendCallsEndpoint(t *testing.T) {
	var body []byte
	body = wire.AppendBatchFrame(body, wire.AppendAck(nil, 7))
	for _, m := range []string{"a", "b", "c"} {
		body = wire.RawEncoding.AppendBatchMessage(body, wire.Message{Type: wire.Text, Data: []byte(m)}, nil)
	}
	body = wire.AppendBatchFrame(body, wire.AppendClose(nil, wire.CloseError{Code: wire.StatusNormalClosure, Reason: "bye"}))
	for _, tc := range []struct {
		name       string
		deliverErr error
		wantCode   int
		wantCalls  string
	}{
		{"accepted", nil, http.StatusNoContent, "Acknowledge(7); Deliver(5, a,b,c); CloseFromClient(1000, bye)"},
		{"gap", fmt.Errorf("deliver: %w", session.ErrSequenceGap), http.StatusConflict, "Acknowledge(7); Deliver(5, a,b,c)"},
		{"closed", wire.CloseError{Code: wire.StatusGoingAway}, http.StatusNotFound, "Acknowledge(7); Deliver(5, a,b,c)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := endpointtest.New()
			defer e.End()
			e.DeliverErr = tc.deliverErr
			rec := httptest.NewRecorder()
			transport.ServeSend(rec, httptest.NewRequest(http.MethodPost, "/rt/send?seq=5", bytes.NewReader(body)), e, sendConfig)
			if rec.Code != tc.wantCode {
				t.Errorf("status = %d %q, want %d", rec.Code, rec.Body, tc.wantCode)
			}
			if got := e.Calls(); got != tc.wantCalls {
				t.Errorf("calls = %q, want %q", got, tc.wantCalls)
			}
		})
	}
}

// TestServeSendTooBigFaultsEndpoint: a body with a message over the limit
// delivers nothing and faults the session with 1009.
func TestServeSendTooBigFaultsEndpoint(t *testing.T) {
	body := wire.RawEncoding.AppendBatchMessage(nil, wire.Message{Type: wire.Text, Data: []byte("ok")}, nil)
	body = wire.RawEncoding.AppendBatchMessage(body, wire.Message{Type: wire.Binary, Data: make([]byte, 65)}, nil)
	e := endpointtest.New()
	defer e.End()
	rec := httptest.NewRecorder()
	transport.ServeSend(rec, httptest.NewRequest(http.MethodPost, "/rt/send?seq=1", bytes.NewReader(body)), e, sendConfig)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d %q, want 413", rec.Code, rec.Body)
	}
	if got, want := e.Calls(), "Fault(1009)"; got != want {
		t.Errorf("calls = %q, want %q", got, want)
	}
}

// TestServeStreamPullsFromLink: a stream attaches to a fake endpoint with
// the client's received count, writes each batch its Link hands out (a
// heartbeat for an empty one), ends with the epilogue once the session has
// finished, and detaches; an attach the endpoint refuses is answered as
// AttachError says.
func TestServeStreamPullsFromLink(t *testing.T) {
	e := endpointtest.New()
	defer e.End()
	e.Push(session.Batch{First: 4, Messages: []wire.Message{{Type: wire.Text, Data: []byte("x")}, {Type: wire.Text, Data: []byte("y")}}})
	e.Push(session.Batch{})
	e.Push(session.Batch{First: 6, Messages: []wire.Message{{Type: wire.Text, Data: []byte("z")}}})
	st := &transport.Stream{Name: "test", ContentType: "text/plain", Prelude: []byte("prelude\n"), Encoder: lineEncoder{}, Epilogue: []byte("end\n")}
	cfg := &transport.Config{HeartbeatInterval: time.Hour, MaxBodyBytes: 1 << 10, WriteTimeout: 5 * time.Second}
	served := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		transport.ServeStream(w, r, &transport.Attach{Session: e, Received: 3, Config: cfg}, st)
	}))
	defer hs.Close()
	resp, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	var got []string
	for lines.Scan() {
		got = append(got, lines.Text())
		if lines.Text() == "6 z" {
			e.End() // the session finishes: the stream ends
		}
	}
	<-served
	if want := "prelude|ctrl h|4 x|5 y|ctrl h|6 z|end"; strings.Join(got, "|") != want {
		t.Errorf("stream = %q, want %q", strings.Join(got, "|"), want)
	}
	if got, want := e.Calls(), "Attach(test, 3); Detach"; got != want {
		t.Errorf("calls = %q, want %q", got, want)
	}

	refused := endpointtest.New()
	defer refused.End()
	refused.AttachErr = session.ErrStaleAttach
	rec := httptest.NewRecorder()
	transport.ServeStream(rec, httptest.NewRequest(http.MethodGet, "/rt/test", nil), &transport.Attach{Session: refused, Received: 3, Config: cfg}, st)
	if rec.Code != http.StatusConflict {
		t.Errorf("refused attach: status %d %q, want 409", rec.Code, rec.Body)
	}
}
