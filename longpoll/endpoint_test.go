package longpoll_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/endpointtest"
	"github.com/tetherkit/tether/longpoll"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// TestServesFakeEndpoint: a poll served from a fake session.Endpoint
// attaches with the client's received count, answers with the batch its
// Link hands out (messages, then the close frame), or a heartbeat once the
// connection's heartbeat interval passes with nothing, and detaches; an
// attach the endpoint refuses answers 404.
func TestServesFakeEndpoint(t *testing.T) {
	cfg := &transport.Config{HeartbeatInterval: time.Hour, MaxMessageBytes: 1 << 10, MaxBodyBytes: 1 << 20}
	closing := &wire.CloseError{Code: wire.StatusGoingAway, Reason: "bye"}
	for _, tc := range []struct {
		name      string
		batch     *session.Batch
		heartbeat time.Duration // the connection's, from heartbeatMs
		attachErr error
		wantCode  int
		wantBody  string // the frames, each as "<type><payload>", joined by "|"
		wantCalls string
	}{
		{"messages", &session.Batch{First: 5, Messages: []wire.Message{{Type: wire.Text, Data: []byte("a")}, {Type: wire.Binary, Data: []byte("b")}}, Close: closing},
			0, nil, http.StatusOK, "ma|bb|c1001 bye", "Attach(longpoll, 4); Detach"},
		{"nothing to send", nil, time.Millisecond, nil, http.StatusOK, "h", "Attach(longpoll, 4); Detach"},
		{"refused", nil, 0, session.ErrUnknownSession, http.StatusNotFound, "", "Attach(longpoll, 4)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := endpointtest.New()
			defer e.End()
			e.AttachErr = tc.attachErr
			if tc.batch != nil {
				e.Push(*tc.batch)
			}
			rec := httptest.NewRecorder()
			longpoll.New().ServeAttach(rec, httptest.NewRequest(http.MethodGet, "/rt/longpoll", nil),
				&transport.Attach{Session: e, Received: 4, Config: cfg, Heartbeat: tc.heartbeat})
			if rec.Code != tc.wantCode {
				t.Fatalf("status = %d %q, want %d", rec.Code, rec.Body, tc.wantCode)
			}
			if got := e.Calls(); got != tc.wantCalls {
				t.Errorf("calls = %q, want %q", got, tc.wantCalls)
			}
			if tc.wantCode != http.StatusOK {
				return
			}
			var frames []string
			err := wire.ParseBatch(rec.Body.Bytes(), cfg.MaxMessageBytes, func(f wire.Frame) error {
				switch {
				case f.IsMessage():
					frames = append(frames, string(f.Type)+string(f.Message.Data))
				case f.Type == wire.FrameClose:
					frames = append(frames, fmt.Sprintf("%c%d %s", f.Type, f.Close.Code, f.Close.Reason))
				default:
					frames = append(frames, string(f.Type))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("the poll's body %q: %v", rec.Body, err)
			}
			if got := strings.Join(frames, "|"); got != tc.wantBody {
				t.Errorf("frames = %q, want %q", got, tc.wantBody)
			}
		})
	}
}
