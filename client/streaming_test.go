package client_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/bufferproxy"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// lockedBuffer is a log sink safe for the session's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBufferingProxyFallsBackToLongPolling puts a proxy that holds every
// response body until it is complete (and refuses WebSocket upgrades) in
// front of a server offering every transport. With fast connect (the
// default) the session is on long polling at once, and the probes of
// WebSocket and both streams fail without holding anything back; with
// DisableUpgrade both streams attach, their first heartbeat never gets
// through, and the client gives each up after Options.StreamStartTimeout.
// Either way messages then flow both ways over long polling.
func TestBufferingProxyFallsBackToLongPolling(t *testing.T) {
	for _, disableUpgrade := range []bool{false, true} {
		for _, holdHeaders := range []bool{false, true} {
			t.Run(fmt.Sprintf("DisableUpgrade=%v/HoldHeaders=%v", disableUpgrade, holdHeaders), func(t *testing.T) {
				testBufferingProxy(t, disableUpgrade, holdHeaders)
			})
		}
	}
}

func testBufferingProxy(t *testing.T, disableUpgrade, holdHeaders bool) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startServer(t, echo, nil, nil)
	proxy, err := bufferproxy.New(strings.TrimSuffix(url, "/rt/"), &bufferproxy.Options{StripUpgrade: true, HoldHeaders: holdHeaders})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	var logs lockedBuffer
	var n network
	o := n.options(t, "")
	o.StreamStartTimeout = 300 * time.Millisecond
	o.DisableUpgrade = disableUpgrade
	var failedMu sync.Mutex
	var failed []string
	o.OnError = func(e *client.AttemptError) {
		failedMu.Lock()
		defer failedMu.Unlock()
		failed = append(failed, e.Request+" "+e.Transport)
	}
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	start := time.Now()
	s := dial(t, ctx, proxy.URL()+"/rt/", o)
	t.Logf("on %s after %v", s.Transport(), time.Since(start))
	if got := s.Transport(); got != "longpoll" {
		t.Fatalf("Transport() behind a buffering proxy = %q, want longpoll", got)
	}
	gaveUp := func(name string) bool {
		return slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(line string) bool {
			return strings.Contains(line, "transport="+name) && strings.Contains(line, client.ErrBufferedStream.Error())
		})
	}
	for _, name := range []string{"sse", "streaming"} {
		for !gaveUp(name) {
			select {
			case <-ctx.Done():
				t.Fatalf("no log of %s given up as buffered:\n%s", name, logs.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if got := s.Transport(); got != "longpoll" {
		t.Fatalf("Transport() after the probes = %q, want longpoll", got)
	}
	for {
		failedMu.Lock()
		n := len(failed)
		failedMu.Unlock()
		if n >= 3 {
			break
		}
		select {
		case <-ctx.Done():
			failedMu.Lock()
			defer failedMu.Unlock()
			t.Fatalf("OnError reported %q, want three failures", failed)
		case <-time.After(5 * time.Millisecond):
		}
	}
	failedMu.Lock()
	want := "attach websocket,probe sse,probe streaming" // fast connect: Dial is on long polling
	if disableUpgrade {
		want = "attach websocket,attach sse,attach streaming"
	}
	if got := strings.Join(failed, ","); got != want {
		t.Errorf("OnError reported %q, want %q", got, want)
	}
	failedMu.Unlock()
	for i := range 3 {
		msg := fmt.Sprintf("through the proxy %d", i)
		if err := s.Send(ctx, textMsg(msg)); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Recv(ctx); err != nil || string(m.Data) != msg {
			t.Fatalf("Recv() = %q, %v; want %q", m.Data, err, msg)
		}
	}
}

// TestStreamRecycleMidBurst has the server send a burst many times the
// stream byte limit at once: the client follows the responses one after
// the other and receives every message once, in order.
func TestStreamRecycleMidBurst(t *testing.T) {
	const n = 3000
	for _, name := range []string{"sse", "streaming"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			var streams atomic.Int64
			count := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/"+name) {
						streams.Add(1)
					}
					h.ServeHTTP(w, r)
				})
			}
			burst := func(s *session.Session) {
				for i := range n {
					m := wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "burst %d", i+1)}
					if i%2 == 1 {
						m.Type = wire.Binary
					}
					if s.Send(s.Context(), m) != nil {
						return
					}
				}
				<-s.Context().Done()
			}
			url := startServer(t, burst, &tether.Options{MaxStreamBytes: 4 << 10}, count)
			var nw network
			s := dial(t, ctx, url, nw.options(t, name))
			for i := range n {
				m, err := s.Recv(ctx)
				if err != nil {
					t.Fatalf("Recv() after %d messages: %v", i, err)
				}
				want := fmt.Sprintf("burst %d", i+1)
				if string(m.Data) != want {
					t.Fatalf("message %d = %q, want %q", i+1, m.Data, want)
				}
			}
			if got := streams.Load(); got < 2 {
				t.Errorf("%d %s responses carried the burst, want the byte limit to end some", got, name)
			}
		})
	}
}
