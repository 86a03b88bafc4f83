package conformance_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

// The outside tests of the server as a whole: its defaults, methods,
// origins, bundle, the refusals an application configures, how it stops,
// what its application and its log see.

// TestOutsideDefaults checks the defaults sections 2 and 8 state, on a
// server made with no options at all.
func TestOutsideDefaults(t *testing.T) {
	c := newOutsideServer(t, tether.HandlerFunc(func(*session.Session) {}), nil)
	s := c.negotiate()
	if s.HeartbeatMs != 25000 || s.ResumeWindowMs != 30000 || s.MaxMessageBytes != 65536 || s.MaxBodyBytes != 1048576 {
		t.Errorf("defaults %+v; sections 2 and 8 say 25000, 30000, 65536 and 1048576", s)
	}
	if got := strings.Join(s.Transports, ","); got != "websocket,sse,streaming,longpoll" {
		t.Errorf("transports %q", got)
	}
}

// TestOutsideMethods checks section 9's 405 for methods other than the
// endpoint's.
func TestOutsideMethods(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	for _, tc := range []struct{ method, endpoint, allow string }{
		{"PUT", "negotiate?v=1", "POST, OPTIONS"},
		{"DELETE", "send?" + s.auth(), "POST, OPTIONS"},
		{"HEAD", "longpoll?" + s.auth() + "&received=0", "GET, OPTIONS"},
		{"PUT", "sse?" + s.auth() + "&received=0", "GET, OPTIONS"},
	} {
		a := c.request(tc.method, tc.endpoint, nil, nil)
		if tc.method == "HEAD" {
			// A HEAD answer has no body to compare.
			if a.status != 405 || a.header.Get("Allow") != tc.allow {
				t.Errorf("HEAD %s: %v, Allow %q", tc.endpoint[:8], a, a.header.Get("Allow"))
			}
			continue
		}
		wantError(t, tc.method+" "+tc.endpoint[:4], a, 405, "method not allowed")
		if got := a.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.endpoint[:4], got, tc.allow)
		}
	}
}

// TestOutsideForwardedProto checks section 7's scheme of the request's
// own origin.
func TestOutsideForwardedProto(t *testing.T) {
	for _, trust := range []bool{false, true} {
		c := newOutside(t, &tether.Options{TrustForwardedProto: trust})
		host, _, _ := strings.Cut(strings.TrimPrefix(c.base, "http://"), "/")
		h := http.Header{"Origin": {"https://" + host}, "X-Forwarded-Proto": {"https"}}
		a := c.request("POST", "negotiate?v=1", h, nil)
		if trust && a.status != 200 {
			t.Errorf("trusted X-Forwarded-Proto https and Origin https://host: %v, section 7 says it is the request's own origin", a)
		}
		if !trust {
			wantError(t, "untrusted X-Forwarded-Proto", a, 403, "origin not allowed")
		}
		// A refusal to an allowed cross origin carries the CORS header,
		// so that its page can read it.
	}
}

// TestOutsideBundle checks section 7: the client bundle is served to any
// origin.
func TestOutsideBundle(t *testing.T) {
	c := newOutside(t, nil)
	other := http.Header{"Origin": {"http://other.example"}}
	for _, name := range []string{"tether.js", "tether.mjs"} {
		a := c.request("GET", name, other, nil)
		if a.status != 200 || len(a.body) < 1000 || a.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s from another origin: %d, %d bytes, Access-Control-Allow-Origin %q; section 7 says served to any origin, with *", name, a.status, len(a.body), a.header.Get("Access-Control-Allow-Origin"))
		}
		a = c.request("OPTIONS", name, http.Header{"Origin": {"http://other.example"}, "Access-Control-Request-Method": {"GET"}}, nil)
		if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("a preflight for %s: %v, Access-Control-Allow-Origin %q; sections 7 and 9 say 204", name, a, a.header.Get("Access-Control-Allow-Origin"))
		}
		a = c.request("POST", name, other, nil)
		wantError(t, "POST "+name, a, 405, "method not allowed")
		if got := a.header.Get("Allow"); got != "GET, HEAD, OPTIONS" {
			t.Errorf("POST %s: Allow %q, section 7 says GET, HEAD, OPTIONS", name, got)
		}
	}
	wantError(t, "a WebSocket handshake from another origin", c.refusedWebSocket(c.negotiate(), "&received=0", http.Header{"Origin": {"http://evil.example"}}), 403, "origin not allowed")
}

// TestOutsideNegotiateRefusals checks section 9's refusals of negotiate
// that the application configures: its auth hook and its per-client limit.
func TestOutsideNegotiateRefusals(t *testing.T) {
	c := newOutside(t, &tether.Options{
		Authorize: func(r *http.Request) (any, error) {
			switch r.Header.Get("Authorization") {
			case "":
				return nil, &tether.AuthError{Status: 401, Message: "sign in first"}
			case "Bearer banned":
				return nil, &tether.AuthError{Status: 403, Message: "you are banned"}
			case "Bearer plain":
				return nil, errors.New("a plain error")
			case "Bearer lines":
				return nil, &tether.AuthError{Status: 403, Message: "two\r\nlines and \xff"}
			}
			return nil, nil
		},
		MaxSessionsPerClient: 1,
		ClientKey:            func(r *http.Request) string { return r.Header.Get("Authorization") },
	})
	wantError(t, "negotiate refused with 401", c.request("POST", "negotiate?v=1", nil, nil), 401, "sign in first")
	wantError(t, "negotiate refused with 403", c.request("POST", "negotiate?v=1", http.Header{"Authorization": {"Bearer banned"}}, nil), 403, "you are banned")
	wantError(t, "negotiate refused with a plain error", c.request("POST", "negotiate?v=1", http.Header{"Authorization": {"Bearer plain"}}, nil), 401, "a plain error")
	// Section 9: one line of UTF-8, whatever the hook's message holds.
	wantError(t, "negotiate refused with a message of two lines", c.request("POST", "negotiate?v=1", http.Header{"Authorization": {"Bearer lines"}}, nil), 403, "two  lines and \uFFFD")
	ok := http.Header{"Authorization": {"Bearer alice"}}
	if a := c.request("POST", "negotiate?v=1", ok, nil); a.status != 200 {
		t.Fatal(a)
	}
	wantError(t, "a second session of one client", c.request("POST", "negotiate?v=1", ok, nil), 503, "too many sessions for this client")
	// The version is checked before the hook runs? Section 9's order:
	// the query (400) before what the request asks for.
	wantError(t, "negotiate without v, refused by the hook too", c.request("POST", "negotiate", nil, nil), 400, "unsupported protocol version")
}

// TestOutsideTransportsOffered checks sections 2 and 9: negotiate lists the
// transports offered in the server's order, and one not offered is no
// endpoint.
func TestOutsideTransportsOffered(t *testing.T) {
	c := newOutside(t, &tether.Options{Transports: []string{"longpoll", "websocket"}})
	s := c.negotiate()
	if got := strings.Join(s.Transports, ","); got != "longpoll,websocket" {
		t.Errorf("transports %q, want the configured longpoll,websocket", got)
	}
	for _, ep := range []string{"sse", "streaming"} {
		wantError(t, ep+" not offered", c.request("GET", ep+"?"+s.auth()+"&received=0", nil, nil), 404, "not found")
	}
	if a := c.send(s, "&seq=1", "mx"); a.status != 204 {
		t.Errorf("send with longpoll offered: %v", a)
	}
}

// TestOutsideServerStops checks section 6's closes of a server that
// stops: Shutdown (1001 server shutting down, delivered after what was
// sent; negotiate answers 503 shutting down; a session with no
// connection gets its close frame on the next attach) and Close (1001
// server closed, the next frame on the connections attached).
func TestOutsideServerStops(t *testing.T) {
	t.Run("Shutdown", func(t *testing.T) {
		e := newWireEnv(t, nil)
		c := &outsideClient{t: t, base: e.base, hc: e.hc}
		a, b := c.negotiate(), c.negotiate()
		w := c.attachWebSocket(a, "&received=0", "")
		if r := c.send(b, "&seq=1", "m1"); r.status != 204 {
			t.Fatal(r)
		}
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), outsideTimeout)
			defer cancel()
			done <- e.srv.Shutdown(ctx)
		}()
		if f := nextFrame(t, w, "ha"); f != "c1001 server shutting down" {
			t.Errorf("WebSocket at Shutdown: %q, section 6 says c1001 server shutting down", f)
		}
		if _, err := w.next(); err != io.EOF || w.closeCode != 1001 {
			t.Errorf("WebSocket close %d %q (%v)", w.closeCode, w.closeText, err)
		}
		wantError(t, "negotiate while shutting down", c.request("POST", "negotiate?v=1", nil, nil), 503, "shutting down")
		if r := c.request("GET", "longpoll?"+b.auth()+"&received=0", nil, nil); r.body != "2:m126:c1001 server shutting down" {
			t.Errorf("a poll during Shutdown: %v, section 6 says the messages then the close frame", r)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		e := newWireEnv(t, nil)
		c := &outsideClient{t: t, base: e.base, hc: e.hc}
		s := c.negotiate()
		poll := make(chan outsideAnswer, 1)
		go func() { poll <- c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil) }()
		time.Sleep(200 * time.Millisecond) // the poll waits (heartbeat 1 s)
		e.srv.Close()
		if r := <-poll; r.status != 200 || r.body != "19:c1001 server closed" {
			t.Errorf("a poll waiting at Close: %v, section 6 says c1001 server closed", r)
		}
	})
}

// TestOutsideApplicationSees checks section 6's "What the Go server's
// application sees": the error its session ends with, as text.
func TestOutsideApplicationSees(t *testing.T) {
	e := newWireEnv(t, &tether.Options{ResumeWindow: 300 * time.Millisecond})
	c := &outsideClient{t: t, base: e.base, hc: e.hc}
	ended := func(s outsideSession) string {
		t.Helper()
		for range 100 {
			if err, ok := e.ends.Load(s.Session); ok {
				return err.(error).Error()
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("session %s did not end", s.Session)
		return ""
	}
	for _, tc := range []struct {
		frames []string
		want   string
	}{
		{[]string{"c4100 bye"}, "tether: session closed: 4100 bye"},
		{[]string{"c1000"}, "tether: session closed: 1000"},
		{[]string{"mclose 4200 app reason"}, "tether: session closed: 4200 app reason"},
		{[]string{"m" + strings.Repeat("x", wireMaxMessage+1)}, "tether: session closed: 1009 message too big"},
		{nil, "tether: session closed: 1006 connection lost"},
	} {
		s := c.negotiate()
		if tc.frames == nil {
			// Attached once, then never again.
			if a := c.request("GET", "longpoll?"+s.auth()+"&received=0&heartbeatMs=1000", nil, nil); a.status != 200 {
				t.Fatal(a)
			}
		} else {
			c.send(s, "&seq=1", tc.frames...)
		}
		if got := ended(s); got != tc.want {
			t.Errorf("after %.20q: the application sees %q, section 6 says %q", tc.frames, got, tc.want)
		}
	}
}

// TestOutsideTokenNeverLogged checks section 3: the server never logs the
// token, nor the session parameter of a request it cannot match, at any
// level, whatever goes wrong.
func TestOutsideTokenNeverLogged(t *testing.T) {
	// A file: its writes are safe for concurrent use.
	log, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() }) // after the server's cleanup, which runs first
	c := newOutsideServer(t, tether.HandlerFunc(func(s *session.Session) { <-s.Context().Done() }), &tether.Options{
		Logger:          slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MaxMessageBytes: 100,
	})
	s, other := c.negotiate(), c.negotiate()
	swapped := "session=" + s.Token + "&token=" + s.Session
	for _, r := range []struct{ method, endpoint string }{
		{"GET", "longpoll?" + swapped + "&received=0"},
		{"GET", "longpoll?session=" + s.Session + "&token=" + other.Token + "&received=0"},
		{"GET", "sse?" + swapped + "&received=0"},
		{"POST", "send?" + swapped + "&seq=1"},
		{"GET", "longpoll?" + s.auth() + "&received=x"},
	} {
		c.request(r.method, r.endpoint, nil, nil)
	}
	c.request("POST", "send?"+s.auth()+"&seq=1", nil, []byte("9:mcut"))
	c.request("POST", "send?"+s.auth()+"&received=9", nil, nil)
	c.request("GET", "longpoll?"+s.auth()+"&received=5", nil, nil)
	c.refusedWebSocket(outsideSession{Session: s.Token, Token: s.Session}, "&received=0", nil)
	w := c.attachWebSocket(other, "&received=0", "")
	w.write(ws.TextMessage, "x")
	w.next()
	c.request("POST", "send?"+other.auth()+"&seq=1", nil, outsideBatch("m"+strings.Repeat("x", 200)))
	b, err := os.ReadFile(log.Name())
	if err != nil {
		t.Fatal(err)
	}
	if logs := string(b); !strings.Contains(logs, "unknown session") || strings.Contains(logs, s.Token) || strings.Contains(logs, other.Token) {
		t.Errorf("a token is in the server's log, or the log is not the one written:\n%s", logs)
	}
}

// TestOutsideSlowBody checks section 9's 408: a send body that stops
// short of its Content-Length answers 408 request timeout and closes the
// connection; the session is unaffected.
func TestOutsideSlowBody(t *testing.T) {
	c := newOutside(t, &tether.Options{ReadTimeout: 300 * time.Millisecond})
	s := c.negotiate()
	host, _, _ := strings.Cut(strings.TrimPrefix(c.base, "http://"), "/")
	for _, endpoint := range []string{"send?" + s.auth() + "&seq=1", "negotiate?v=1"} {
		a, resp := c.raw("POST /rt/" + endpoint + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 10\r\n\r\n2:m")
		wantError(t, "a body stopping short on "+endpoint[:4], a, 408, "request timeout")
		if !resp.Close {
			t.Errorf("408 on %s without Connection: close", endpoint[:4])
		}
	}
	// A byte at a time: the timeout bounds the whole body, not each
	// read. 30 bytes, one each 20 ms, take 600 ms.
	conn, err := net.DialTimeout("tcp", host, outsideTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(outsideTimeout))
	body := outsideBatch("m" + strings.Repeat("x", 26))
	conn.Write([]byte("POST /rt/send?" + s.auth() + "&seq=1 HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"))
	for _, b := range body {
		if _, err := conn.Write([]byte{b}); err != nil {
			break // the server answered and closed
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	wantError(t, "a body a byte at a time", outsideAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}, 408, "request timeout")
	if a := c.send(s, "&seq=1", "mstill"); a.status != 204 {
		t.Errorf("send after the 408: %v", a)
	}
}

// TestOutsideUnreadSendBody checks section 9: a send answered before its
// body is read is answered at once, with Connection: close, without
// waiting for the body.
func TestOutsideUnreadSendBody(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	host, _, _ := strings.Cut(strings.TrimPrefix(c.base, "http://"), "/")
	for _, tc := range []struct {
		query  string
		header string
		status int
		body   string
	}{
		{"session=AAAAAAAAAAAAAAAAAAAAAA&token=" + s.Token + "&seq=1", "", 404, "unknown session"},
		{s.auth() + "&seq=x", "", 400, "bad request: invalid seq"},
		{s.auth() + "&seq=1", "Origin: http://evil.example\r\n", 403, "origin not allowed"},
	} {
		a, resp := c.raw("POST /rt/send?" + tc.query + " HTTP/1.1\r\nHost: " + host + "\r\n" + tc.header + "Content-Length: 1000\r\n\r\n")
		wantError(t, "send answered before its body", a, tc.status, tc.body)
		if !resp.Close {
			t.Errorf("send answered %d before its body, without Connection: close", a.status)
		}
	}
	// Any Content-Type is ignored (section 5.2).
	for i, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"} {
		a := c.request("POST", "send?"+s.auth()+"&seq="+strconv.Itoa(i+1), http.Header{"Content-Type": {ct}}, outsideBatch("mx"))
		if a.status != 204 {
			t.Errorf("send with Content-Type %s: %v", ct, a)
		}
	}
}

// TestOutsideUnknownLooksTheSame checks section 3: an unknown session and
// a wrong token get the same answer, headers included.
func TestOutsideUnknownLooksTheSame(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	unknown := c.request("GET", "longpoll?session=AAAAAAAAAAAAAAAAAAAAAA&token="+s.Token+"&received=0", nil, nil)
	wrong := c.request("GET", "longpoll?session="+s.Session+"&token=AAAAAAAAAAAAAAAAAAAAAA&received=0", nil, nil)
	unknown.header.Del("Date")
	wrong.header.Del("Date")
	if fmt.Sprint(unknown, unknown.header) != fmt.Sprint(wrong, wrong.header) {
		t.Errorf("unknown session %v %v, wrong token %v %v; section 3 says indistinguishable", unknown, unknown.header, wrong, wrong.header)
	}
}

// newOutsideServer starts a server of the application h, for the tests
// that need another application than the wire server's echo, as
// newWireEnv starts that one.
func newOutsideServer(t *testing.T, h tether.Handler, opts *tether.Options) *outsideClient {
	srv := tether.NewServer(h, opts)
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	hs := httptest.NewServer(mux)
	tr := &http.Transport{}
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		tr.CloseIdleConnections()
	})
	return &outsideClient{t: t, base: hs.URL + "/rt/", hc: &http.Client{Transport: tr}}
}

// TestOutsideOrderOfChecks checks section 9's order of the checks with a
// request that fails several: origin, path, method, query, session.
func TestOutsideOrderOfChecks(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	evil := http.Header{"Origin": {"http://evil.example"}}
	unknown := "session=AAAAAAAAAAAAAAAAAAAAAA&token=AAAAAAAAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		method, endpoint string
		header           http.Header
		status           int
		body             string
	}{
		{"PUT", "nothing?received=x", evil, 403, "origin not allowed"},
		{"PUT", "nothing?received=x", nil, 404, "not found"},
		{"GET", "negotiate", nil, 405, "method not allowed"},
		{"POST", "longpoll?" + unknown + "&received=x", nil, 405, "method not allowed"},
		{"GET", "send?" + unknown + "&seq=abc", nil, 405, "method not allowed"},
		{"POST", "send?" + unknown + "&seq=abc", nil, 400, "bad request: invalid seq"},
		{"GET", "longpoll?" + unknown + "&received=x", nil, 400, "bad request: invalid received"},
		{"GET", "sse?" + unknown, nil, 400, "bad request: missing received"},
		{"GET", "longpoll?" + unknown + "&received=0&heartbeatMs=0", nil, 400, "bad request: invalid heartbeatMs"},
		{"POST", "send?" + unknown + "&seq=1", nil, 404, "unknown session"},
		{"POST", "send?" + s.auth() + "&seq=0&received=x", nil, 400, "bad request: invalid received"},
	} {
		a := c.request(tc.method, tc.endpoint, tc.header, []byte("x"))
		if tc.method == "GET" {
			a = c.request(tc.method, tc.endpoint, tc.header, nil)
		}
		wantError(t, tc.method+" "+tc.endpoint, a, tc.status, tc.body)
	}
}

// TestOutsideApplicationReasonNotUTF8 checks section 4: the reason in a
// close frame is UTF-8, even when the application's is not.
func TestOutsideApplicationReasonNotUTF8(t *testing.T) {
	c := newOutsideServer(t, tether.HandlerFunc(func(s *session.Session) { s.Close(4100, "a\xffb") }), nil)
	const want = "c4100 a\uFFFDb"
	if a := c.request("GET", "longpoll?"+c.negotiate().auth()+"&received=0", nil, nil); a.body != string(outsideBatch(want)) {
		t.Errorf("poll: %v, want %q", a, outsideBatch(want))
	}
	for _, v := range outsideVariants {
		d := c.attachVariant(v, c.negotiate(), "&received=0")
		if f := nextFrame(t, d, "ha"); f != want {
			t.Errorf("%v: close frame %q, want %q", v, f, want)
		}
		if w, ok := d.(*wsDown); ok {
			if _, err := w.next(); err != io.EOF || w.closeCode != 4100 || w.closeText != "a\uFFFDb" {
				t.Errorf("%v: WebSocket close %d %q (%v); RFC 6455 and section 6 want the frame's reason, UTF-8", v, w.closeCode, w.closeText, err)
			}
		}
	}
}
