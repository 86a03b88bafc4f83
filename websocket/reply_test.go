package websocket_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestReplyInMessageCallback: a reply sent from a message callback is
// written by the reader once the callback returns; a callback that goes on
// after its reply (here until the client has read it) does not hold the
// reply back: a flush of its own writes it.
func TestReplyInMessageCallback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	replied := make(chan struct{})
	_, attachURL := startSessionWith(t, &tether.Options{Logger: slog.New(slog.DiscardHandler)}, func(s *session.Session, m wire.Message) {
		reply := append([]byte("re: "), m.Data...)
		if err := s.Send(ctx, wire.Message{Type: wire.Text, Data: reply}); err != nil {
			t.Errorf("Send in the callback = %v", err)
		}
		if string(m.Data) == "wait" {
			select { // until the client has the reply
			case <-replied:
			case <-ctx.Done():
			}
		}
	})
	c := dial(t, ws.Dialer{}, attachURL, 0)
	c.SetReadDeadline(time.Now().Add(time.Minute)) // a bound, not a measurement
	for i, text := range []string{"echo", "wait", "echo"} {
		if err := c.WriteMessage(ws.TextMessage, append([]byte{byte(wire.FrameText)}, text...)); err != nil {
			t.Fatal(err)
		}
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for the reply to message %d (%s): %v", i+1, text, err)
			}
			f, err := wire.ParseFrame(p, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if f.IsMessage() {
				if got := string(f.Message.Data); got != "re: "+text {
					t.Fatalf("reply %d = %q, want %q", i+1, got, "re: "+text)
				}
				break
			}
		}
		if text == "wait" {
			close(replied)
		}
	}
}
