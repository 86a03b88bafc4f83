package tether_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
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
		if got != s.Session {
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
	s.CloseFromClient(wire.CloseError{Code: wire.StatusAbnormalClosure, Reason: "gone"})
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := srv.NewSession(req("", "Bearer ok")); !errors.Is(err, tether.ErrShuttingDown) {
		t.Fatalf("NewSession after Shutdown = %v, want ErrShuttingDown", err)
	}
}

// TestKeptHeader: a session keeps at most KeptHeaderBytes of its request's
// headers, in the order of their names, each whole or not at all.
func TestKeptHeader(t *testing.T) {
	srv := tether.NewServer(tether.HandlerFunc(func(s *session.Session) { <-s.Context().Done() }), nil)
	defer srv.Close()
	r := httptest.NewRequest(http.MethodPost, "http://app.example/rt/negotiate?v=1", nil)
	big := strings.Repeat("c", tether.KeptHeaderBytes) // too big alone
	r.Header.Set("Authorization", "Bearer x")
	r.Header.Set("Cookie", big)
	r.Header["X-Many"] = []string{"1", "2"}
	r.Header.Set("X-Rest", strings.Repeat("r", tether.KeptHeaderBytes-len("Authorization")-len("Bearer x")-len("X-Many")-2-len("X-Rest")))
	r.Header.Set("X-Zzz", "z") // nothing left for it
	s, err := srv.NewSession(r)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(s.Request().Header))
	if want := []string{"Authorization", "X-Many", "X-Rest"}; !slices.Equal(got, want) {
		t.Errorf("kept headers %q, want %q", got, want)
	}
	if v := s.Request().Header["X-Many"]; !slices.Equal(v, []string{"1", "2"}) {
		t.Errorf("X-Many = %q, want both values", v)
	}
	r.Header["X-Many"][0] = "changed"
	if v := s.Request().Header.Get("X-Many"); v != "1" {
		t.Errorf("X-Many after the request's header changed = %q, want a copy: 1", v)
	}
}
