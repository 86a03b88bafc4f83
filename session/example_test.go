package session_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// ExampleLocal shows both sides of a session held by this process: the
// application sends through its Session, and a transport, given the Local
// as its Endpoint, attaches a connection, pulls what to write, and
// acknowledges what the client reports as received.
func ExampleLocal() {
	cfg := &session.Config{
		HeartbeatInterval: 25 * time.Second,
		ResumeWindow:      30 * time.Second,
		MaxMessageBytes:   64 << 10,
		MaxQueuedBytes:    4 << 20,
	}
	l := session.New(cfg, session.RequestInfo{}, nil)
	app := l.Session           // the *Session a Handler is given
	var e session.Endpoint = l // what a transport is given
	defer app.Close(wire.StatusNormalClosure, "")
	ctx := context.Background()

	// The application sends before any connection is attached.
	app.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("hello")})
	app.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("world")})

	// A transport attaches; the client has received nothing yet.
	link, _ := e.Attach(session.AttachOptions{Transport: "example"})
	b, _ := link.Pull(ctx, cfg.HeartbeatInterval, 64<<10)
	for i, m := range b.Messages {
		fmt.Printf("message %d: %s\n", b.First+uint64(i), m.Data)
	}

	// The client reports both received: the session forgets them.
	e.Acknowledge(2)
	sent, acked := app.Sent()
	fmt.Printf("sent %d, acknowledged %d\n", sent, acked)
	link.Detach()
	// Output:
	// message 1: hello
	// message 2: world
	// sent 2, acknowledged 2
}
