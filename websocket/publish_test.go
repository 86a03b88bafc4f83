package websocket_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestPublishToLateReader: a publish writes to each connection on the
// publisher's goroutine without waiting for it. A client that reads
// nothing while 16 MiB are published (beyond its sockets' buffers) holds
// up neither Publish nor a client that reads, which gets every message
// at once; the socket of the one that does not read fills, a write
// stops partway through a frame, and what is left goes out on the
// connection's own goroutine, after the cut frame and before the pongs
// answering its pings. Once it reads, it gets every message, whole and
// in order.
func TestPublishToLateReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const topic, messages = "late", 1024
	opened := make(chan *session.Session, 2)
	var srv *tether.Server
	srv = tether.NewServer(&tether.Callbacks{
		Open: func(s *session.Session) {
			if err := srv.Subscribe(ctx, s, topic, nil); err != nil {
				t.Error(err)
			}
			opened <- s
		},
		Message: func(*session.Session, wire.Message) {},
	}, &tether.Options{Logger: slog.New(slog.DiscardHandler), MaxQueuedBytes: 64 << 20, WriteTimeout: time.Hour})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(func() { srv.Close() })
	dialSubscribed := func() *ws.Conn {
		c := dial(t, ws.Dialer{}, negotiate(t, hs.URL), 0)
		select {
		case <-opened:
		case <-ctx.Done():
			t.Fatal("the session never opened")
		}
		return c
	}
	reader, late := dialSubscribed(), dialSubscribed()

	data := make([]byte, slowBlockBytes)
	for i := range messages {
		copy(data, fmt.Sprintf("%08d", i))
		if err := srv.Publish(ctx, topic, wire.Message{Type: wire.Text, Data: data}, nil); err != nil {
			t.Fatalf("Publish %d = %v", i, err)
		}
	}
	if n, ce := readUpTo(t, reader, 0, messages); n != messages || ce != nil {
		t.Fatalf("the reading client got %d messages then close %v, want %d", n, ce, messages)
	}
	// Pongs answering these are written by the server's reader, through
	// the socket, behind what the publish left.
	for range 3 {
		if err := late.WriteControl(ws.PingMessage, []byte("p"), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if n, ce := readUpTo(t, late, 0, messages); n != messages || ce != nil {
		t.Fatalf("the late client got %d messages then close %v, want %d", n, ce, messages)
	}
}
