package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestWebSocketAcknowledgesEndOfBurst: a burst of fewer than 64 messages
// on a WebSocket is acknowledged once the acknowledgement delay has passed
// (PROTOCOL.md section 5.1), by the client's timer writing the
// acknowledgement while nothing else is written; the server then forgets
// the messages. Twice, so that the timer is armed again after it fired.
func TestWebSocketAcknowledgesEndOfBurst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	sessions := make(chan *session.Session, 1)
	url := startServer(t, func(s *session.Session) {
		sessions <- s
		<-s.Context().Done()
	}, nil, nil)
	var n network
	c := dial(t, ctx, url, n.options(t, "websocket"))
	s := <-sessions
	for burst := 1; burst <= 2; burst++ {
		for i := range 3 {
			if err := s.Send(ctx, textMsg("m")); err != nil {
				t.Fatalf("burst %d: Send #%d = %v", burst, i, err)
			}
			if _, err := c.Recv(ctx); err != nil {
				t.Fatalf("burst %d: Recv #%d = %v", burst, i, err)
			}
		}
		for {
			sent, acked := s.Sent()
			if acked == sent {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("burst %d: %d of %d messages acknowledged when the test timed out", burst, acked, sent)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("still open")}); err != nil {
		t.Fatalf("Send after the acknowledgements = %v", err)
	}
}
