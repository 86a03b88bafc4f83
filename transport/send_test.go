package transport_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// TestServeSendManyMessages: bodies of more messages than are handed to
// the session at a time, overlapping (a retry that also carries newer
// messages), reach the session exactly once each, in order; a body of
// base64 messages and padding gets the same.
func TestServeSendManyMessages(t *testing.T) {
	cfg := &transport.Config{HeartbeatInterval: time.Second, MaxMessageBytes: 64, MaxBodyBytes: 1 << 20, WriteTimeout: time.Second}
	scfg := &session.Config{HeartbeatInterval: time.Second, ResumeWindow: time.Minute, MaxMessageBytes: 64, MaxQueuedBytes: 1 << 30}
	s := session.New(scfg, session.RequestInfo{}, nil)
	defer s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
	var got []string
	s.OnMessage(func(m wire.Message) { got = append(got, string(m.Data)) })
	body := func(first, n int, base64 bool) []byte {
		var b []byte
		for i := first; i < first+n; i++ {
			m := wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "%d", i)}
			enc := wire.RawEncoding
			if base64 {
				enc = wire.TextOnlyEncoding
				m.Data = append(m.Data, '\n') // sent as M, base64
			}
			b = enc.AppendBatchMessage(b, m, nil)
			b = wire.AppendBatchFrame(b, wire.AppendHeartbeat(nil))
		}
		return b
	}
	for _, post := range []struct {
		first, n int
		base64   bool
	}{{1, 2500, false}, {1001, 3000, false}, {4001, 2100, true}} {
		req := httptest.NewRequest(http.MethodPost, "/rt/send?seq="+strconv.Itoa(post.first), bytes.NewReader(body(post.first, post.n, post.base64)))
		rec := httptest.NewRecorder()
		transport.ServeSend(rec, req, s, cfg)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("send of %d messages from %d: %d %q", post.n, post.first, rec.Code, rec.Body)
		}
	}
	if len(got) != 6100 {
		t.Fatalf("the session got %d messages, want 6100", len(got))
	}
	for i, m := range got {
		want := strconv.Itoa(i + 1)
		if i >= 4000 {
			want += "\n"
		}
		if m != want {
			t.Fatalf("message %d is %q, want %q", i+1, m, want)
		}
	}
}
