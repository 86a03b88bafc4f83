package websocket_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether/internal/endpointtest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/websocket"
	"github.com/tetherkit/tether/wire"
)

// TestServesFakeEndpoint: the WebSocket transport serves any
// session.Endpoint, not only a session held by this process: against a
// fake, it attaches with the client's received count, writes what the
// Link hands out, delivers the client's message numbered from the seq
// parameter, passes on its acknowledgement and close frame, and detaches
// when the socket closes.
func TestServesFakeEndpoint(t *testing.T) {
	e := endpointtest.New()
	defer e.End()
	e.Push(session.Batch{First: 3, Messages: []wire.Message{{Type: wire.Text, Data: []byte("hi")}}})
	cfg := &transport.Config{HeartbeatInterval: time.Hour, MaxMessageBytes: 1 << 10, MaxBodyBytes: 1 << 20, WriteTimeout: 5 * time.Second}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		websocket.New().ServeAttach(w, r, &transport.Attach{Session: e, Received: 2, Seq: 7, Config: cfg})
	}))
	defer hs.Close()
	c, _, err := ws.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	f, err := wire.ParseFrame(p, cfg.MaxMessageBytes)
	if err != nil || !f.IsMessage() || string(f.Message.Data) != "hi" {
		t.Fatalf("first WebSocket message %q parses as %+v, %v; want the message hi", p, f, err)
	}
	for _, frame := range [][]byte{
		wire.AppendAck(nil, 3),
		append([]byte{byte(wire.FrameText)}, "hello"...),
		wire.AppendClose(nil, wire.CloseError{Code: wire.StatusNormalClosure, Reason: "bye"}),
	} {
		if err := c.WriteMessage(ws.TextMessage, frame); err != nil {
			t.Fatal(err)
		}
	}
	c.WriteMessage(ws.CloseMessage, ws.FormatCloseMessage(ws.CloseNormalClosure, ""))
	c.Close()
	select {
	case <-e.Detached():
	case <-time.After(30 * time.Second):
		t.Fatalf("the transport never detached; calls: %s", e.Calls())
	}
	if got, want := e.Calls(), "Attach(websocket, 2); Acknowledge(3); Deliver(7, hello); CloseFromClient(1000, bye); Detach"; got != want {
		t.Errorf("calls = %q\nwant    %q", got, want)
	}
}
