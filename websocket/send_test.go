package websocket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// dialSession starts a server with opts (served by Callbacks that do
// nothing), negotiates and attaches a raw gorilla WebSocket offering
// subprotocols, and returns the server's session and the client's
// connection.
func dialSession(tb testing.TB, opts *tether.Options, subprotocols ...string) (*session.Session, *ws.Conn) {
	tb.Helper()
	s, attachURL := startSession(tb, opts)
	return s, dial(tb, ws.Dialer{Subprotocols: subprotocols}, attachURL, 0)
}

// startSession starts a server with opts (served by Callbacks that do
// nothing) and negotiates a session. It returns the server's session and
// its attach URL without the received count (see dial).
func startSession(tb testing.TB, opts *tether.Options) (*session.Session, string) {
	tb.Helper()
	return startSessionWith(tb, opts, func(*session.Session, wire.Message) {})
}

// startSessionWith is startSession with onMessage as the Message callback.
func startSessionWith(tb testing.TB, opts *tether.Options, onMessage func(*session.Session, wire.Message)) (*session.Session, string) {
	tb.Helper()
	sessions := make(chan *session.Session, 1)
	srv := tether.NewServer(&tether.Callbacks{
		Open:    func(s *session.Session) { sessions <- s },
		Message: onMessage,
	}, opts)
	hs := httptest.NewServer(srv)
	tb.Cleanup(hs.Close)
	tb.Cleanup(func() { srv.Close() })
	attachURL := negotiate(tb, hs.URL)
	s := <-sessions
	return s, attachURL
}

// negotiate negotiates a session with the server at base and returns its
// WebSocket attach URL without the received count (see dial).
func negotiate(tb testing.TB, base string) string {
	tb.Helper()
	resp, err := http.Post(base+"/negotiate?v=1", "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	var n struct{ Session, Token string }
	err = json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	if err != nil {
		tb.Fatal(err)
	}
	return "ws" + strings.TrimPrefix(base, "http") + fmt.Sprintf("/websocket?session=%s&token=%s&seq=1", n.Session, n.Token)
}

// dial attaches a connection to the session at attachURL, saying the
// client has received the first received messages; the test's cleanup
// closes it.
func dial(tb testing.TB, d ws.Dialer, attachURL string, received uint64) *ws.Conn {
	tb.Helper()
	c, resp, err := d.Dial(fmt.Sprintf("%s&received=%d", attachURL, received), nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			tb.Fatalf("%v: %s %s", err, resp.Status, body)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// TestFramesOfEverySize: the frames the connection writes itself read back
// in gorilla, with every length encoding (7-bit, 16-bit, 64-bit) at its
// bounds, text and binary.
func TestFramesOfEverySize(t *testing.T) {
	sizes := []int{0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 70000}
	s, c := dialSession(t, &tether.Options{Logger: slog.New(slog.DiscardHandler), MaxMessageBytes: 1 << 20})
	if p := c.Subprotocol(); p != "" {
		t.Fatalf("subprotocol %q chosen, none offered", p) // so one message per WebSocket message
	}
	ctx := context.Background()
	for _, n := range sizes {
		for _, typ := range []wire.MessageType{wire.Text, wire.Binary} {
			data := []byte(strings.Repeat("x", n))
			if err := s.Send(ctx, wire.Message{Type: typ, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for _, n := range sizes {
		for _, typ := range []int{ws.TextMessage, ws.BinaryMessage} {
			var got []byte
			for { // skip acknowledgements and heartbeats
				gotTyp, p, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("reading the %d-byte message: %v", n, err)
				}
				if gotTyp == ws.BinaryMessage || (len(p) > 0 && p[0] == 'm') {
					if gotTyp != typ {
						t.Fatalf("%d bytes: message type %d, want %d", n, gotTyp, typ)
					}
					got = p
					break
				}
			}
			if typ == ws.TextMessage {
				got = got[1:] // the frame type
			}
			if len(got) != n || strings.Trim(string(got), "x") != "" {
				t.Fatalf("a %d-byte message arrived as %d bytes", n, len(got))
			}
		}
	}
}

// BenchmarkSend measures the server's send path over a real WebSocket:
// Session.Send of a 64-byte text message, written by the flush it starts
// (or the one under way). The client reads the raw socket and
// discards it, so the allocations reported are the server's.
func BenchmarkSend(b *testing.B) {
	s, c := dialSession(b, &tether.Options{Logger: slog.New(slog.DiscardHandler), SlowConsumer: session.SlowConsumerBlock})
	go io.Copy(io.Discard, c.UnderlyingConn()) // the raw socket: no client; the loop writes the acknowledgements
	ctx := context.Background()
	m := wire.Message{Type: wire.Text, Data: []byte(strings.Repeat("x", 64))}
	b.ReportAllocs()
	b.SetBytes(int64(len(m.Data)))
	b.ResetTimer()
	for i := range b.N {
		if err := s.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
		if i%1024 == 1023 {
			// The client's acknowledgement, so that the queue stays
			// short.
			sent, _ := s.Sent()
			if err := c.WriteMessage(ws.TextMessage, wire.AppendAck(nil, sent)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
