package longpoll_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tetherkit/tether/longpoll"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// firstWriteHook is a ResponseWriter that calls hook once, before its
// first Write.
type firstWriteHook struct {
	*httptest.ResponseRecorder
	hook func()
}

func (w *firstWriteHook) Write(p []byte) (int, error) {
	if w.hook != nil {
		w.hook()
		w.hook = nil
	}
	return w.ResponseRecorder.Write(p)
}

// TestAnswerWrittenInPieces: a poll's answer leaves in pieces, each taken
// from the queue as the one before has been written, so that a poll cut
// short has delivered its first frames however large its whole answer: a
// message queued while the first piece is written goes out in the same
// answer, after those queued before; MaxPollBytes still bounds the answer.
func TestAnswerWrittenInPieces(t *testing.T) {
	const queued, size = 2000, 100 // about 328 KiB counted: several pieces
	for _, tc := range []struct {
		name     string
		maxBytes int
		want     int
	}{
		{"all", 1 << 20, queued + 1},
		{"bounded", 100 * (size + session.MessageOverhead), 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := session.New(nil, session.RequestInfo{}, nil)
			defer s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
			send := func(i int) {
				m := wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "%0*d", size, i)}
				if err := s.Send(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			for i := range queued {
				send(i)
			}
			cfg := &transport.Config{HeartbeatInterval: 1 << 40, MaxMessageBytes: 1 << 10, MaxBodyBytes: 1 << 20, MaxPollBytes: tc.maxBytes}
			w := &firstWriteHook{ResponseRecorder: httptest.NewRecorder(), hook: func() { send(queued) }}
			longpoll.New().ServeAttach(w, httptest.NewRequest(http.MethodGet, "/rt/longpoll", nil),
				&transport.Attach{Session: s, Config: cfg})
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d %q", w.Code, w.Body)
			}
			got := 0
			err := wire.ParseBatch(w.Body.Bytes(), cfg.MaxMessageBytes, func(f wire.Frame) error {
				if want := fmt.Sprintf("%0*d", size, got); !f.IsMessage() || string(f.Message.Data) != want {
					return fmt.Errorf("frame %d is %c %q, want message %q", got, f.Type, f.Message.Data, want)
				}
				got++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("the answer carried %d messages, want %d", got, tc.want)
			}
		})
	}
}
