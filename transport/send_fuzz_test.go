package transport_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// sendStatuses are the answers PROTOCOL.md section 9 allows for send.
var sendStatuses = map[int]bool{
	http.StatusNoContent: true, http.StatusBadRequest: true, http.StatusNotFound: true,
	http.StatusConflict: true, http.StatusRequestEntityTooLarge: true,
}

// FuzzServeSend posts arbitrary bodies through the shared upstream handler.
// It never panics, answers only documented statuses, and is idempotent: a
// body accepted once, posted again with the same seq, is accepted again and
// adds nothing.
func FuzzServeSend(f *testing.F) {
	for _, seed := range []struct {
		body string
		seq  uint64
	}{
		{"6:mhello", 1}, {"6:mhello3:bab", 1}, {"2:a03:a12", 0}, {"1:h", 0},
		{"5:c1000", 0}, {"9:c4100 bye6:mafter", 1}, {"5:MaGk=", 1}, {"5:BAAE=", 1},
		{"6:mhello", 3}, {"0:", 1}, {"99:m", 1}, {"6:m\xff\xfe\xfd\xfc", 1},
		{"", 0}, {"x", 1},
	} {
		f.Add([]byte(seed.body), seed.seq)
	}
	cfg := &transport.Config{HeartbeatInterval: time.Second, MaxMessageBytes: 64, MaxBodyBytes: 512, WriteTimeout: time.Second}
	scfg := &session.Config{HeartbeatInterval: time.Second, ResumeWindow: time.Minute, MaxMessageBytes: 64, MaxQueuedBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, body []byte, seq uint64) {
		s := session.New(scfg, session.RequestInfo{}, nil)
		defer s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
		post := func() int {
			req := httptest.NewRequest(http.MethodPost, "/rt/send?seq="+strconv.FormatUint(seq, 10), bytes.NewReader(body))
			rec := httptest.NewRecorder()
			transport.ServeSend(rec, req, s, cfg)
			if !sendStatuses[rec.Code] {
				t.Fatalf("ServeSend(%q, seq %d) answered %d %q", body, seq, rec.Code, rec.Body)
			}
			return rec.Code
		}
		if post() != http.StatusNoContent || s.Err() != nil {
			return
		}
		received := s.Received()
		if code := post(); code != http.StatusNoContent {
			t.Fatalf("ServeSend(%q, seq %d) accepted once, then answered %d", body, seq, code)
		}
		if got := s.Received(); got != received {
			t.Fatalf("ServeSend(%q, seq %d) twice: received %d, then %d", body, seq, received, got)
		}
	})
}
