package client_test

import (
	"context"
	"net/http"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/wire"
)

// TestTokenInHeader: the client sends the session token in the Tether-Token
// header on every request after negotiate, the WebSocket handshake
// included, and never in a URL (PROTOCOL.md section 3), on each transport
// forced and in automatic mode (probes and the upgrade included).
func TestTokenInHeader(t *testing.T) {
	for _, name := range append([]string{"automatic"}, transports...) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			type request struct{ endpoint, queryToken, header string }
			var (
				mu   sync.Mutex
				seen []request
			)
			record := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					seen = append(seen, request{path.Base(r.URL.Path), r.URL.Query().Get("token"), r.Header.Get("Tether-Token")})
					mu.Unlock()
					h.ServeHTTP(w, r)
				})
			}
			url := startServer(t, echo, nil, record)
			var n network
			opts := n.options(t, name)
			if name == "automatic" {
				opts.Transports = nil
			}
			s := dial(t, ctx, url, opts)
			for _, m := range []string{"one", "two"} {
				if err := s.Send(ctx, textMsg(m)); err != nil {
					t.Fatalf("Send() = %v", err)
				}
				if got, err := s.Recv(ctx); err != nil || string(got.Data) != m {
					t.Fatalf("Recv() = %q, %v, want %q", got.Data, err, m)
				}
			}
			// Automatic: closed once on WebSocket, not in the middle of the
			// upgrade. An upgrade attempt that fails on a loaded machine (a
			// timeout) leaves the session on a stream for a while: a later
			// upgrade round moves it (TestUpgradeRetried), within the bound.
			for name == "automatic" && s.Transport() != "websocket" {
				select {
				case <-ctx.Done():
					t.Fatalf("still on %q, not upgraded to websocket", s.Transport())
				case <-time.After(10 * time.Millisecond):
				}
			}
			if err := s.Close(wire.StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			endpoints := map[string]int{}
			for _, r := range seen {
				endpoints[r.endpoint]++
				if r.endpoint == "negotiate" {
					continue
				}
				if r.queryToken != "" {
					t.Errorf("%s: token in the URL", r.endpoint)
				}
				if r.header == "" {
					t.Errorf("%s: no Tether-Token header", r.endpoint)
				}
			}
			if name != "automatic" && endpoints[name] == 0 {
				t.Errorf("no %s request among %v", name, endpoints)
			}
			if name != "websocket" && endpoints["send"] == 0 {
				t.Errorf("no send request among %v", endpoints)
			}
		})
	}
}
