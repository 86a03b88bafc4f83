package session_test

import (
	"testing"

	"github.com/tetherkit/tether/session"
)

// TestOnConnection: attaching, superseding, detaching and re-attaching are
// reported in order, each with the transport before it.
func TestOnConnection(t *testing.T) {
	s := newSession(t, nil)
	events := make(chan session.ConnectionEvent, 16)
	s.OnConnection(func(e session.ConnectionEvent) { events <- e })
	ws := attach(t, s, session.AttachOptions{Transport: "websocket"})
	sse := attach(t, s, session.AttachOptions{Transport: "sse"}) // supersedes ws
	ws.Detach()                                                  // superseded: no event
	sse.Detach()
	lp := attach(t, s, session.AttachOptions{Transport: "longpoll"})
	lp.Detach()
	want := []session.ConnectionEvent{
		{Transport: "websocket"},
		{Transport: "sse", Previous: "websocket"},
		{Previous: "sse"},
		{Transport: "longpoll", Previous: "sse"},
		{Previous: "longpoll"},
	}
	ctx := testContext(t)
	for i, w := range want {
		select {
		case got := <-events:
			if got != w {
				t.Fatalf("event #%d = %+v, want %+v", i, got, w)
			}
		case <-ctx.Done():
			t.Fatalf("event #%d: none, want %+v", i, w)
		}
	}
}

// TestOnConnectionAttachedAlready: a session with a connection reports it
// first.
func TestOnConnectionAttachedAlready(t *testing.T) {
	s := newSession(t, nil)
	attach(t, s, session.AttachOptions{Transport: "streaming"})
	events := make(chan session.ConnectionEvent, 1)
	s.OnConnection(func(e session.ConnectionEvent) { events <- e })
	select {
	case got := <-events:
		if want := (session.ConnectionEvent{Transport: "streaming"}); got != want {
			t.Fatalf("first event = %+v, want %+v", got, want)
		}
	case <-testContext(t).Done():
		t.Fatal("no event for the connection attached already")
	}
}
