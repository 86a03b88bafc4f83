package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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

// proxyPage answers status with the HTML page nginx writes for it: what a
// client meets when a proxy in front refuses a request or cannot reach the
// server (a wrong location, 413 past client_max_body_size, 502, 504).
func proxyPage(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", text, text)
}

// portalPage answers 200 with a captive portal's login page.
func portalPage(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!DOCTYPE html>\n<html><body><form action=\"/login\">Sign in to the Wi-Fi</form></body></html>\n")
}

// reported records what OnError reports, one line per failed attempt:
// request, transport, status and error.
type reported struct {
	mu    sync.Mutex
	lines []string
}

// on makes o's OnError record into r.
func (r *reported) on(o *client.Options) {
	o.OnError = func(e *client.AttemptError) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.lines = append(r.lines, fmt.Sprintf("%s %s %d %v", e.Request, e.Transport, e.Status, e.Err))
	}
}

// take returns the lines recorded so far, and forgets them.
func (r *reported) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	lines := r.lines
	r.lines = nil
	return lines
}

// dialBehind starts a server calling h behind a proxy whose answer answers
// a request itself when it returns true, and dials it over transport name,
// recording what OnError reports.
func dialBehind(t *testing.T, ctx context.Context, name string, h tether.HandlerFunc, answer func(http.ResponseWriter, *http.Request) bool) (*client.Session, *reported) {
	url := startServer(t, h, nil, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !answer(w, r) {
				next.ServeHTTP(w, r)
			}
		})
	})
	var n network
	o := n.options(t, name)
	r := &reported{}
	r.on(o)
	return dial(t, ctx, url, o), r
}

// TestNegotiateAnsweredByNonTether checks that Dial's NegotiateError
// carries Tether's one-line error message and nothing else: an answer that
// is not Tether's (a proxy's HTML page, net/http's own 400 without a line
// feed, a message too long for a close reason) reads "HTTP <status>".
func TestNegotiateAnsweredByNonTether(t *testing.T) {
	cases := []struct {
		name   string
		answer func(http.ResponseWriter)
		status int
		want   string
	}{
		{"nginx 404", func(w http.ResponseWriter) { proxyPage(w, 404) }, 404, "HTTP 404"},
		{"nginx 413", func(w http.ResponseWriter) { proxyPage(w, 413) }, 413, "HTTP 413"},
		{"nginx 502", func(w http.ResponseWriter) { proxyPage(w, 502) }, 502, "HTTP 502"},
		{"nginx 504", func(w http.ResponseWriter) { proxyPage(w, 504) }, 504, "HTTP 504"},
		{"net/http 400", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, "400 Bad Request")
		}, 400, "HTTP 400"},
		{"two lines", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "forbidden\nsee the admin\n")
		}, 403, "HTTP 403"},
		{"a message over 123 bytes", func(w http.ResponseWriter) { http.Error(w, strings.Repeat("x", 124), http.StatusUnauthorized) }, 401, "HTTP 401"},
		{"Tether's 503", func(w http.ResponseWriter) { http.Error(w, "too many sessions", http.StatusServiceUnavailable) }, 503, "too many sessions"},
		{"Tether's 401 of 123 bytes", func(w http.ResponseWriter) { http.Error(w, strings.Repeat("é", 61)+"x", http.StatusUnauthorized) }, 401, strings.Repeat("é", 61) + "x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.answer(w) }))
			defer ts.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
			defer hc.CloseIdleConnections()
			_, err := client.Dial(ctx, ts.URL+"/rt/", &client.Options{HTTPClient: hc})
			var ne *client.NegotiateError
			if !errors.As(err, &ne) || ne.Status != c.status || ne.Message != c.want {
				t.Fatalf("Dial() = %v, want NegotiateError %d %q", err, c.status, c.want)
			}
		})
	}
}

// TestNonTetherAnswersOnDial checks the answers that are no refusal: a
// captive portal's 200 page for negotiate fails Dial as a malformed answer,
// and a negotiate that passes while every other request is answered by a
// login page (a 200 page, or a 302 redirect to one) fails Dial with
// ErrNoTransport, each attach reported to OnError; nothing hangs.
func TestNonTetherAnswersOnDial(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { portalPage(w) }))
	defer portal.Close()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	_, err := client.Dial(ctx, portal.URL+"/rt/", &client.Options{HTTPClient: hc})
	if err == nil || !strings.Contains(err.Error(), "malformed negotiate answer") {
		t.Fatalf("Dial() through a captive portal = %v, want a malformed negotiate answer", err)
	}

	for _, mode := range []string{"page", "redirect"} {
		t.Run(mode, func(t *testing.T) {
			url := startServer(t, echo, nil, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					switch {
					case strings.HasSuffix(r.URL.Path, "/negotiate"):
						h.ServeHTTP(w, r)
					case strings.HasSuffix(r.URL.Path, "/login"):
						portalPage(w)
					case mode == "redirect":
						http.Redirect(w, r, "/rt/login", http.StatusFound)
					default:
						portalPage(w)
					}
				})
			})
			for _, name := range transports {
				var n network
				o := n.options(t, name)
				var r reported
				r.on(o)
				_, err := client.Dial(ctx, url, o)
				if !errors.Is(err, client.ErrNoTransport) {
					t.Fatalf("%s: Dial() = %v, want ErrNoTransport", name, err)
				}
				// The HTTP client follows the redirect to the login page; a
				// WebSocket handshake does not.
				want := "attach " + name + " 200"
				if mode == "redirect" && name == "websocket" {
					want = "attach websocket 302"
				}
				if failed := r.take(); len(failed) == 0 || !strings.HasPrefix(failed[0], want+" ") {
					t.Errorf("%s: OnError reported %q, want %q first", name, failed, want)
				}
			}
		})
	}
}

// TestLoginPageAfterCut checks that a session whose attaches meet a login
// page after a cut (a captive portal that appeared) reports every attempt to
// OnError and ends with 4001 once the resume window has passed: the page's
// 200 proves no connection.
func TestLoginPageAfterCut(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			var portal atomic.Bool
			url := startServer(t, echo, &tether.Options{ResumeWindow: time.Second}, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if portal.Load() {
						portalPage(w)
						return
					}
					h.ServeHTTP(w, r)
				})
			})
			var n network
			o := n.options(t, name)
			var attempts atomic.Int32
			o.OnError = func(e *client.AttemptError) {
				if e.Request == "attach" && e.Status == http.StatusOK {
					attempts.Add(1)
				}
			}
			s := dial(t, ctx, url, o)
			if err := s.Send(ctx, textMsg("before")); err != nil {
				t.Fatal(err)
			}
			if m, err := s.Recv(ctx); err != nil || string(m.Data) != "before" {
				t.Fatalf("Recv() = %q, %v", m.Data, err)
			}
			portal.Store(true)
			n.cut()
			_, err := s.Recv(ctx)
			if wire.CloseStatus(err) != wire.StatusSessionExpired {
				t.Fatalf("Recv() = %v, want the session to end with 4001", err)
			}
			if attempts.Load() == 0 {
				t.Error("no attach answered by the login page was reported to OnError")
			}
		})
	}
}

// TestNewNegotiateAnsweredByProxy checks a session that negotiates anew
// (after 1012): a proxy's 502 is a failed attempt, reported with its
// status, and the next negotiate goes on; a proxy's 404 ends the session
// with 1008 "HTTP 404", reported too, never with the proxy's page.
func TestNewNegotiateAnsweredByProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var negotiates atomic.Int32
	s, r := dialBehind(t, ctx, "longpoll", func(s *session.Session) {
		for {
			m, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			if string(m.Data) == "restart now" {
				s.Close(wire.StatusServiceRestart, "restarting")
				return
			}
			s.Send(s.Context(), m)
		}
	}, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/negotiate") {
			return false
		}
		switch negotiates.Add(1) {
		case 2, 3:
			proxyPage(w, http.StatusBadGateway)
		case 5:
			proxyPage(w, http.StatusNotFound)
		default:
			return false
		}
		return true
	})
	if err := s.Send(ctx, textMsg("restart now")); err != nil {
		t.Fatal(err)
	}
	// The second session echoes, once two negotiates met the 502.
	for first := s.ID(); s.ID() == first; {
		select {
		case <-ctx.Done():
			t.Fatal("no new session")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := s.Send(ctx, textMsg("ping")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "ping" {
		t.Fatalf("Recv() = %q, %v; want ping", m.Data, err)
	}
	want := "negotiate  502 tether: negotiate refused: 502 HTTP 502"
	if failed := r.take(); len(failed) != 2 || failed[0] != want || failed[1] != want {
		t.Errorf("OnError reported %q, want two negotiates answered 502", failed)
	}

	// The third session: its negotiate meets the proxy's 404.
	if err := s.Send(ctx, textMsg("restart now")); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := s.Recv(ctx)
		if err == nil {
			continue
		}
		var ce wire.CloseError
		if !errors.As(err, &ce) || ce.Code != wire.StatusPolicyViolation || ce.Reason != "HTTP 404" {
			t.Fatalf("Recv() = %v, want 1008 HTTP 404", err)
		}
		break
	}
	if failed := r.take(); len(failed) != 1 || !strings.HasPrefix(failed[0], "negotiate  404 ") {
		t.Errorf("OnError reported %q, want the negotiate answered 404", failed)
	}
}

// TestSendLimitKeptAfterReconnect checks that a send body refused 413 by a
// proxy (client_max_body_size of 16 KiB) makes the client send in halves
// for the rest of the session: the messages queued while the network was
// down go out on the next connection without another 413.
func TestSendLimitKeptAfterReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var refused atomic.Int32
	url := startServer(t, echo, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/send") && r.ContentLength > 16<<10 {
				refused.Add(1)
				proxyPage(w, http.StatusRequestEntityTooLarge)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	var n network
	o := n.options(t, "sse")
	resumed := make(chan struct{}, 1)
	o.OnResumed = func() {
		select {
		case resumed <- struct{}{}:
		default:
		}
	}
	s := dial(t, ctx, url, o)
	batch := func(from int) {
		for i := from; i < from+40; i++ {
			if err := s.Send(ctx, textMsg(fmt.Sprintf("%04d", i)+strings.Repeat(".", 1000))); err != nil {
				t.Fatal(err)
			}
		}
	}
	echoed := func(from int) {
		for i := from; i < from+40; i++ {
			m, err := s.Recv(ctx)
			if err != nil || !strings.HasPrefix(string(m.Data), fmt.Sprintf("%04d", i)) {
				t.Fatalf("Recv() = %.4s, %v; want %04d", m.Data, err, i)
			}
		}
	}
	// Each batch is queued while the network is down: the first send
	// request of the next connection carries all of it (40 KiB).
	reconnectWith := func(from int) {
		n.setDown(true)
		n.cut()
		batch(from)
		n.setDown(false)
		select {
		case <-resumed:
		case <-ctx.Done():
			t.Fatal("not resumed")
		}
		echoed(from)
	}
	reconnectWith(0)
	if refused.Load() == 0 {
		t.Fatal("no send body was refused: the proxy's limit was not met")
	}
	before := refused.Load()
	reconnectWith(40)
	if got := refused.Load(); got != before {
		t.Errorf("the next connection's sends were refused %d more times, want none", got-before)
	}
}

// TestSendAnsweredByProxy checks that a send answered by something other
// than Tether (a proxy's 502, a login page's 200) is reported to OnError
// with its status, and that its message arrives once all the same.
func TestSendAnsweredByProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var sends atomic.Int32
	s, r := dialBehind(t, ctx, "sse", echo, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/send") || r.ContentLength == 0 {
			return false
		}
		switch sends.Add(1) {
		case 1:
			proxyPage(w, http.StatusBadGateway)
		case 2:
			portalPage(w)
		default:
			return false
		}
		return true
	})
	if err := s.Send(ctx, textMsg("once")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "once" {
		t.Fatalf("Recv() = %q, %v; want once", m.Data, err)
	}
	if err := s.Send(ctx, textMsg("next")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "next" {
		t.Fatalf("Recv() = %q, %v; want next (the first message exactly once)", m.Data, err)
	}
	// The 502 came on the attached connection: a send. The 200 came on
	// the next one, as a send if it was attached by then, else as its
	// attach.
	if failed := r.take(); len(failed) != 2 || failed[0] != "send sse 502 send: status 502: HTTP 502" || !strings.HasSuffix(failed[1], " 200 send: status 200: HTTP 200") {
		t.Errorf("OnError reported %q, want the send answered 502, then the one answered 200", failed)
	}
}
