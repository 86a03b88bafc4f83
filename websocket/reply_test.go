package websocket_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
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

// TestSilentConnectionDropped: a WebSocket from which the server reads
// nothing for two heartbeat intervals is dropped, never before, however
// early in the process's life it attached; one that keeps sending a frame
// now and then is not.
func TestSilentConnectionDropped(t *testing.T) {
	const hb = 300 * time.Millisecond
	opts := &tether.Options{Logger: slog.New(slog.DiscardHandler), HeartbeatInterval: hb}
	_, silentURL := startSession(t, opts)
	_, talkingURL := startSessionWith(t, opts, func(s *session.Session, m wire.Message) {
		s.Send(context.Background(), m) // an echo
	})
	start := time.Now()
	silent := dial(t, ws.Dialer{}, silentURL, 0)
	talking := dial(t, ws.Dialer{}, talkingURL, 0)
	silent.SetReadDeadline(time.Now().Add(time.Minute)) // a bound, not a measurement
	var err error
	for err == nil {
		_, _, err = silent.ReadMessage() // the server's heartbeats, then the end
		// The other client sends a heartbeat as often as the server does.
		if werr := talking.WriteMessage(ws.TextMessage, wire.AppendHeartbeat(nil)); werr != nil {
			t.Fatalf("the client that keeps sending was cut: %v", werr)
		}
	}
	if elapsed := time.Since(start); elapsed < 2*hb {
		t.Fatalf("dropped after %v of silence, before two heartbeat intervals (%v)", elapsed, 2*hb)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the silent connection was not dropped within a minute")
	}
	// The one that kept sending is still served: its message comes back.
	talking.SetReadDeadline(time.Now().Add(time.Minute))
	if err := talking.WriteMessage(ws.TextMessage, append([]byte{byte(wire.FrameText)}, "still here"...)); err != nil {
		t.Fatal(err)
	}
	for {
		_, p, err := talking.ReadMessage()
		if err != nil {
			t.Fatalf("the client that kept sending: %v", err)
		}
		if f, err := wire.ParseFrame(p, 1<<20); err == nil && f.IsMessage() && string(f.Message.Data) == "still here" {
			return
		}
	}
}
