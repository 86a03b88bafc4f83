package tether_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

// TestNewSession: a session made outside negotiate goes through the same
// checks and reaches the same Handler.
func TestNewSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := make(chan *session.Session, 4)
	srv := tether.NewServer(tether.HandlerFunc(func(s *session.Session) {
		served <- s
		<-s.Context().Done()
	}), &tether.Options{
		MaxSessions: 1,
		Authorize: func(r *http.Request) (any, error) {
			if r.Header.Get("Authorization") != "Bearer ok" {
				return nil, &tether.AuthError{Status: http.StatusForbidden, Message: "no"}
			}
			return "user-1", nil
		},
	})
	req := func(origin, auth string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://app.example/sockjs/1/2/websocket", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}

	var ae *tether.AuthError
	if _, err := srv.NewSession(req("", "Bearer bad")); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("NewSession refused by Authorize = %v, want the hook's *AuthError", err)
	}
	if _, err := srv.NewSession(req("http://evil.example", "Bearer ok")); !errors.Is(err, tether.ErrOriginNotAllowed) {
		t.Fatalf("NewSession from another origin = %v, want ErrOriginNotAllowed", err)
	}
	s, err := srv.NewSession(req("http://app.example", "Bearer ok"))
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	if got := s.Request().Auth; got != "user-1" {
		t.Errorf("Request().Auth = %v, want what Authorize returned", got)
	}
	select {
	case got := <-served:
		if got != s {
			t.Fatal("the Handler was given another session")
		}
	case <-ctx.Done():
		t.Fatal("the Handler never ran")
	}
	if n := srv.Sessions(); n != 1 {
		t.Errorf("Sessions() = %d, want 1", n)
	}
	if _, err := srv.NewSession(req("", "Bearer ok")); !errors.Is(err, session.ErrTooManySessions) {
		t.Fatalf("NewSession over MaxSessions = %v, want session.ErrTooManySessions", err)
	}

	// The caller ends it as a bridge does when its client goes away.
	s.CloseFromClient(session.CloseError{Code: session.StatusAbnormalClosure, Reason: "gone"})
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := srv.NewSession(req("", "Bearer ok")); !errors.Is(err, tether.ErrShuttingDown) {
		t.Fatalf("NewSession after Shutdown = %v, want ErrShuttingDown", err)
	}
}
