package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/wire"
)

func TestEcho(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := startServer(t, echo, nil, nil)
			var n network
			s := dial(t, ctx, url, n.options(t, name))
			if got := s.Transport(); got != name {
				t.Fatalf("Transport() = %q, want %q", got, name)
			}
			msgs := []wire.Message{
				textMsg("hello"),
				textMsg(""),
				textMsg("héllo, 世界\n\r"),
				{Type: wire.Binary, Data: []byte{0, 1, 2, 0xff, 0xfe, '\n'}},
				{Type: wire.Binary, Data: []byte{}},
				{Type: wire.Binary, Data: bytes.Repeat([]byte{0x80}, 60000)},
				textMsg("6:mtrick1:h"),
			}
			for _, m := range msgs {
				if err := s.Send(ctx, m); err != nil {
					t.Fatalf("Send(%v) = %v", m.Type, err)
				}
			}
			for i, want := range msgs {
				got, err := s.Recv(ctx)
				if err != nil {
					t.Fatalf("Recv() #%d = %v", i, err)
				}
				if got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
					t.Fatalf("Recv() #%d = %v %q, want %v %q", i, got.Type, trim(got.Data), want.Type, trim(want.Data))
				}
			}
			if err := s.Close(wire.StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			select {
			case <-s.Done():
			default:
				t.Fatal("Done() not closed when Close returned")
			}
			_, err := s.Recv(ctx)
			if ce, ok := err.(wire.CloseError); !ok || ce.Code != wire.StatusNormalClosure || ce.Reason != "bye" {
				t.Fatalf("Recv() after Close = %v, want CloseError 1000 bye", err)
			}
			if err := s.Send(ctx, textMsg("late")); wire.CloseStatus(err) != wire.StatusNormalClosure {
				t.Fatalf("Send() after Close = %v, want CloseError 1000", err)
			}
			if got := s.Transport(); got != "" {
				t.Fatalf("Transport() after Close = %q, want \"\"", got)
			}
		})
	}
}

func trim(p []byte) string {
	if len(p) > 20 {
		return fmt.Sprintf("%s... (%d bytes)", p[:20], len(p))
	}
	return string(p)
}

// TestLongPollBodyLimit sends messages that fit only one per send request:
// the client must split its batches by the server's maxBodyBytes.
func TestLongPollBodyLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startServer(t, echo, &tether.Options{MaxMessageBytes: 1000, MaxBodyBytes: 1400}, nil)
	var n network
	s := dial(t, ctx, url, n.options(t, "longpoll"))
	for i := range 30 {
		m := wire.Message{Type: wire.Binary, Data: bytes.Repeat([]byte{byte(i)}, 1000)}
		if err := s.Send(ctx, m); err != nil {
			t.Fatalf("Send(%d) = %v", i, err)
		}
	}
	for i := range 30 {
		m, err := s.Recv(ctx)
		if err != nil || !bytes.Equal(m.Data, bytes.Repeat([]byte{byte(i)}, 1000)) {
			t.Fatalf("Recv() #%d = %q, %v; want 1000 bytes of %d", i, trim(m.Data), err, i)
		}
	}
}

// TestLongPollSendPieces queues more than a send request carries while the
// server holds the requests back: each request then carries at most 64 KiB
// of body, well under maxBodyBytes, so that a short-lived connection still
// carries whole requests, and every message arrives once, in order.
func TestLongPollSendPieces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const count, size = 300, 1000 // about 300 KB in all
	release := make(chan struct{})
	var hold atomic.Bool // once the session is attached
	var largest atomic.Int64
	url := startServer(t, echo, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/send") {
				if hold.Load() {
					select {
					case <-release:
					case <-r.Context().Done():
						return
					}
				}
				body, err := io.ReadAll(r.Body)
				if err != nil {
					return
				}
				if n := int64(len(body)); n > largest.Load() {
					largest.Store(n)
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			h.ServeHTTP(w, r)
		})
	})
	var n network
	opts := n.options(t, "longpoll")
	s := dial(t, ctx, url, opts)
	hold.Store(true)
	for i := range count {
		if err := s.Send(ctx, wire.Message{Type: wire.Binary, Data: bytes.Repeat([]byte{byte(i)}, size)}); err != nil {
			t.Fatalf("Send(%d) = %v", i, err)
		}
	}
	close(release)
	for i := range count {
		m, err := s.Recv(ctx)
		if err != nil || !bytes.Equal(m.Data, bytes.Repeat([]byte{byte(i)}, size)) {
			t.Fatalf("Recv() #%d = %q, %v; want %d bytes of %d", i, trim(m.Data), err, size, i)
		}
	}
	if got := largest.Load(); got > 64<<10 {
		t.Errorf("the largest send body was %d bytes, want at most 64 KiB", got)
	}
}
