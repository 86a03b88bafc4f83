package session_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tetherkit/tether/session"
)

// ExampleSession shows both sides of a session: the application sends,
// and a transport attaches a connection, pulls what to write, and
// acknowledges what the client reports as received.
func ExampleSession() {
	cfg := &session.Config{
		HeartbeatInterval: 25 * time.Second,
		ResumeWindow:      30 * time.Second,
		MaxMessageBytes:   64 << 10,
		MaxQueuedBytes:    4 << 20,
	}
	s := session.New(cfg, session.RequestInfo{}, nil)
	defer s.Close(session.StatusNormalClosure, "")
	ctx := context.Background()

	// The application sends before any connection is attached.
	s.Send(ctx, session.Message{Type: session.Text, Data: []byte("hello")})
	s.Send(ctx, session.Message{Type: session.Text, Data: []byte("world")})

	// A transport attaches; the client has received nothing yet.
	link, _ := s.Attach(session.AttachOptions{Transport: "example"})
	b, _ := link.Pull(ctx, cfg.HeartbeatInterval, 64<<10)
	for i, m := range b.Messages {
		fmt.Printf("message %d: %s\n", b.First+uint64(i), m.Data)
	}

	// The client reports both received: the session forgets them.
	s.Acknowledge(2)
	sent, acked := s.Sent()
	fmt.Printf("sent %d, acknowledged %d\n", sent, acked)
	link.Detach()
	// Output:
	// message 1: hello
	// message 2: world
	// sent 2, acknowledged 2
}
