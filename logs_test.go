package tether_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/wire"
)

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogs checks what a session's life writes to Options.Logger: its
// opening at Info, a client's malformed request at Warn, its close with the
// code, and never the session token.
func TestLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := echoServer(t, &tether.Options{Logger: logger})

	q, token := conformance.Negotiate(t, base)
	if status := post(t, base+"send?seq=1&"+q, []byte("x:")); status != http.StatusBadRequest {
		t.Errorf("malformed send: %d, want 400", status)
	}
	if status := post(t, base+"send?seq=1&"+q, wire.AppendBatchFrame(nil, []byte("c4100 bye"))); status != http.StatusNoContent {
		t.Errorf("close: %d, want 204", status)
	}
	for !strings.Contains(logs.String(), "tether: session closed") {
		select {
		case <-ctx.Done():
			t.Fatalf("the close was not logged:\n%s", logs.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	out := logs.String()
	for _, want := range []string{"level=INFO msg=\"tether: session opened\"", "level=WARN msg=\"tether: malformed send\"", "code=4100"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, token) {
		t.Errorf("logs hold a session token:\n%s", out)
	}
}

// post sends body to u and returns the status.
func post(t *testing.T, u string, body []byte) int {
	t.Helper()
	resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOriginRefusedLogged: a browser refused for its origin, as every one is
// behind a proxy that does not pass the Host header, is logged at Warn with
// the Origin and Host compared, and how to fix it; once a minute at most, so
// that refused requests cannot flood the log.
func TestOriginRefusedLogged(t *testing.T) {
	var logs syncBuffer
	base := echoServer(t, &tether.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, base+"negotiate?v=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "tether" // what nginx sends by default: the upstream's name
		req.Header.Set("Origin", "http://app.example:8080")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("negotiate with a foreign Origin: %d, want 403", resp.StatusCode)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "tether: origin not allowed"); n != 1 {
		t.Fatalf("the refusal was logged %d times, want once:\n%s", n, out)
	}
	for _, want := range []string{"level=WARN", "origin=http://app.example:8080", "host=tether", "proxy_set_header Host $http_host"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}
