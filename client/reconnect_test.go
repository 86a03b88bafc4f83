package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestNewSessionAfterRestart checks that after a close with a code that asks
// for it (1012 service restart, 4006 owner gone), the client negotiates a
// new session by itself, reports it through OnReconnecting, and goes on:
// the messages of the new session flow both ways, numbered from 1 again.
func TestNewSessionAfterRestart(t *testing.T) {
	closes := []wire.CloseError{
		{Code: wire.StatusServiceRestart, Reason: "restarting"},
		{Code: wire.StatusOwnerGone, Reason: "owner gone"},
	}
	for _, name := range transports {
		for _, ce := range closes {
			t.Run(fmt.Sprintf("%s/%d", name, ce.Code), func(t *testing.T) { newSessionAfter(t, name, ce) })
		}
	}
}

// newSessionAfter runs TestNewSessionAfterRestart on transport name, the
// first session closing with closeWith.
func newSessionAfter(t *testing.T, name string, closeWith wire.CloseError) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var (
		mu       sync.Mutex
		sessions []string
	)
	url := startServer(t, func(s *session.Session) {
		mu.Lock()
		sessions = append(sessions, s.ID())
		first := len(sessions) == 1
		mu.Unlock()
		if first {
			s.Send(s.Context(), textMsg("old"))
			s.Recv(s.Context())
			s.Close(closeWith.Code, closeWith.Reason)
			return
		}
		echo(s)
	}, nil, nil)
	var n network
	o := n.options(t, name)
	var reported []string
	o.OnResuming = func() {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, "resuming")
	}
	o.OnReconnecting = func(ce wire.CloseError) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, ce.Error())
	}
	s := dial(t, ctx, url, o)
	first := s.ID()
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "old" {
		t.Fatalf("Recv() = %q, %v; want \"old\"", m.Data, err)
	}
	if err := s.Send(ctx, textMsg("restart now")); err != nil {
		t.Fatal(err)
	}
	for s.ID() == first {
		select {
		case <-ctx.Done():
			t.Fatal("no new session before the test's deadline")
		case <-s.Done():
			t.Fatalf("session ended: %v", s.Close(wire.StatusNormalClosure, ""))
		case <-time.After(5 * time.Millisecond):
		}
	}
	for i := range 3 {
		want := strings.Repeat("x", i+1)
		if err := s.Send(ctx, textMsg(want)); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Recv(ctx); err != nil || string(m.Data) != want {
			t.Fatalf("echo #%d in the new session = %q, %v; want %q", i, m.Data, err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sessions) != 2 || sessions[1] != s.ID() {
		t.Errorf("server sessions %q, client now on %q: want two, the client on the second", sessions, s.ID())
	}
	if len(reported) != 1 || reported[0] != closeWith.Error() {
		t.Errorf("OnResuming and OnReconnecting reported %q, want %q once", reported, closeWith.Error())
	}
}

// TestSendToServerWithoutSession sends through a balancer that takes send
// requests to a second server, which holds no session: the session must end
// with 4005 session unknown within a bounded time, never hang.
func TestSendToServerWithoutSession(t *testing.T) {
	for _, name := range []string{"sse", "streaming", "longpoll"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			other := tether.NewServer(tether.HandlerFunc(echo), nil)
			defer other.Close()
			url := startServer(t, echo, nil, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/send") {
						other.ServeHTTP(w, r)
						return
					}
					h.ServeHTTP(w, r)
				})
			})
			var n network
			o := n.options(t, name)
			// Dial itself may find out: its first send request proves the
			// connection.
			s, err := client.Dial(ctx, url, o)
			if err == nil {
				defer func() { <-s.Done() }()
				defer s.Close(wire.StatusNormalClosure, "")
				s.Send(ctx, textMsg("hello"))
				_, err = s.Recv(ctx)
			}
			var ce wire.CloseError
			if !errors.As(err, &ce) || ce.Code != wire.StatusSessionUnknown || ce.Reason != "session unknown" {
				t.Fatalf("Dial or Recv = %v, want CloseError 4005 session unknown", err)
			}
		})
	}
}

// TestNewSessionRefusedForVersion closes a session with 1012 and answers
// the negotiate that follows 400 "unsupported protocol version", as a
// server moved to another version would: the session ends with 4003, as
// after an answer naming another version, instead of negotiating again.
func TestNewSessionRefusedForVersion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var negotiated atomic.Int32
	url := startServer(t, func(s *session.Session) {
		s.Recv(s.Context())
		s.Close(wire.StatusServiceRestart, "restarting")
	}, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/negotiate") && negotiated.Add(1) > 1 {
				http.Error(w, "unsupported protocol version", http.StatusBadRequest)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	var n network
	s := dial(t, ctx, url, n.options(t, "longpoll"))
	if err := s.Send(ctx, textMsg("restart now")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Recv(ctx)
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce.Code != wire.StatusProtocolError || ce.Reason != "unsupported protocol version" {
		t.Fatalf("Recv() = %v, want CloseError 4003 unsupported protocol version", err)
	}
	if got := negotiated.Load(); got != 2 {
		t.Errorf("%d negotiate requests, want 2 (no retry after the refusal)", got)
	}
}
