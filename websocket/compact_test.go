package websocket_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/websocket"
	"github.com/tetherkit/tether/wire"
)

// TestCompactBurst: a client that offers the compact subprotocol gets it,
// and reads a burst too large for the sockets' buffers, sent while it
// does not read, exactly: every message once, in order, text and binary,
// short and long (one-, two- and three-byte lengths), with some binary
// WebSocket messages carrying several frames. A text WebSocket message is
// still one frame.
func TestCompactBurst(t *testing.T) {
	s, c := dialSession(t, &tether.Options{Logger: slog.New(slog.DiscardHandler), MaxQueuedBytes: 256 << 20, MaxMessageBytes: 1 << 20},
		"other", websocket.CompactSubprotocol)
	if got := c.Subprotocol(); got != websocket.CompactSubprotocol {
		t.Fatalf("subprotocol %q, want %q", got, websocket.CompactSubprotocol)
	}

	// 24 MiB: more than loopback's socket buffers hold, so that writes
	// wait for the client and messages collect into batches meanwhile.
	sizes := []int{0, 1, 63, 126, 127, 128, 1000, 16382, 16383, 16384, 70000}
	var want []wire.Message
	for total := 0; total < 24<<20; {
		for i, n := range sizes {
			typ := wire.Text
			if i%2 == 1 {
				typ = wire.Binary
			}
			data := bytes.Repeat([]byte{byte('a' + len(want)%26)}, n)
			want = append(want, wire.Message{Type: typ, Data: data})
			total += n
		}
	}
	ctx := context.Background()
	for _, m := range want {
		if err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	var got []wire.Message
	batched := 0 // binary WebSocket messages with more than one frame
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for len(got) < len(want) {
		typ, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(got), len(want), err)
		}
		frames := 0
		keep := func(f wire.Frame) error {
			frames++
			if f.IsMessage() {
				got = append(got, wire.Message{Type: f.Message.Type, Data: bytes.Clone(f.Message.Data)})
			}
			return nil
		}
		if typ == ws.TextMessage {
			f, err := wire.ParseFrame(p, 1<<20)
			if err != nil {
				t.Fatalf("text message %.20q: %v", p, err)
			}
			keep(f)
			continue
		}
		if err := wire.ParseCompactBatch(p, 1<<20, keep); err != nil {
			t.Fatalf("binary message of %d bytes: %v", len(p), err)
		}
		if frames > 1 {
			batched++
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Type != want[i].Type || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("message %d: %v of %d bytes, want %v of %d bytes", i, got[i].Type, len(got[i].Data), want[i].Type, len(want[i].Data))
		}
	}
	if batched == 0 {
		t.Error("no WebSocket message carried more than one frame")
	}
}
