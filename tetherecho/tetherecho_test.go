package tetherecho_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/tetherecho"
	"github.com/tetherkit/tether/wire"
)

// testTimeout bounds every blocking call a test makes.
const testTimeout = 10 * time.Second

// echoSessions sends every message back, prefixed with the session's Auth
// value when there is one.
func echoSessions(s *session.Session) {
	prefix := ""
	if u, ok := s.Request().Auth.(string); ok {
		prefix = u + ": "
	}
	for {
		m, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		m.Data = append([]byte(prefix), m.Data...)
		if s.Send(s.Context(), m) != nil {
			return
		}
	}
}

// start serves e and shuts srv down when the test ends.
func start(t *testing.T, e *echo.Echo, srv *tether.Server) string {
	t.Helper()
	hs := httptest.NewServer(e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	return hs.URL
}

// roundTrip dials url over transport, sends text and returns the answer.
func roundTrip(t *testing.T, url, transport, text string, header http.Header) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := client.Dial(ctx, url, &client.Options{Transports: []string{transport}, Header: header})
	if err != nil {
		return "", err
	}
	defer c.Close(wire.StatusNormalClosure, "")
	if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(text)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return string(m.Data), nil
}

var transports = []string{"websocket", "longpoll"}

func TestMountOnEcho(t *testing.T) {
	for _, prefix := range []string{"/rt/", "/rt", "rt", "/deep/er/rt/"} {
		t.Run(prefix, func(t *testing.T) {
			e := echo.New()
			srv := tether.NewServer(tether.HandlerFunc(echoSessions), nil)
			tetherecho.Mount(e, prefix, srv)
			base := start(t, e, srv) + "/" + strings.Trim(prefix, "/") + "/"
			for _, tr := range transports {
				got, err := roundTrip(t, base, tr, "hi", nil)
				if err != nil {
					t.Fatalf("%s: Dial(%q): %v", tr, base, err)
				}
				if got != "hi" {
					t.Errorf("%s: echo = %q, want %q", tr, got, "hi")
				}
			}
		})
	}
}

// TestMountOnGroup checks that the group's middleware and Mount's own run
// on every Tether request, WebSocket upgrades included, and that
// Authorize sees what the middleware stored.
func TestMountOnGroup(t *testing.T) {
	var groupCalls, mountCalls atomic.Int64
	requireUser := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			groupCalls.Add(1)
			if r := c.Request(); r.URL.Path == "/api/rt/negotiate" {
				u := r.Header.Get("X-User")
				if u == "" {
					return echo.NewHTTPError(http.StatusUnauthorized, "no user")
				}
				c.Set("user", u)
			}
			return next(c)
		}
	}
	count := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			mountCalls.Add(1)
			return next(c)
		}
	}
	srv := tether.NewServer(tether.HandlerFunc(echoSessions), &tether.Options{
		Authorize: func(r *http.Request) (any, error) {
			u, _ := tetherecho.Get(r, "user").(string)
			if u == "" {
				return nil, &tether.AuthError{Status: http.StatusForbidden, Message: "who are you?"}
			}
			return u, nil
		},
	})
	e := echo.New()
	tetherecho.Mount(e.Group("/api", requireUser), "/rt/", srv, count)
	e.GET("/other", func(c echo.Context) error { return c.String(http.StatusOK, "other") })
	base := start(t, e, srv) + "/api/rt/"

	for _, tr := range transports {
		before := groupCalls.Load()
		got, err := roundTrip(t, base, tr, "hi", http.Header{"X-User": {"ada"}})
		if err != nil {
			t.Fatalf("%s: Dial: %v", tr, err)
		}
		if got != "ada: hi" {
			t.Errorf("%s: echo = %q, want %q", tr, got, "ada: hi")
		}
		// negotiate, an attach, and at least one more request (a send
		// or a second poll) on long polling.
		if n := groupCalls.Load() - before; n < 2 {
			t.Errorf("%s: group middleware ran %d times, want at least 2", tr, n)
		}
	}
	if g, m := groupCalls.Load(), mountCalls.Load(); g != m {
		t.Errorf("group middleware ran %d times, Mount's %d: want the same", g, m)
	}

	_, err := roundTrip(t, base, "websocket", "hi", nil)
	var ne *client.NegotiateError
	if !errors.As(err, &ne) {
		t.Fatalf("Dial without a user: %v, want a NegotiateError", err)
	}
}

func TestGetOutsideEcho(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/rt/negotiate", nil)
	if v := tetherecho.Get(r, "user"); v != nil {
		t.Errorf("Get on a plain request = %v, want nil", v)
	}
	if _, ok := tetherecho.Context(r); ok {
		t.Error("Context on a plain request reports an echo.Context")
	}
}
