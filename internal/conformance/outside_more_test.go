package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	if a := c.send(s, "&seq=1", "mstill"); a.status != 204 {
		t.Errorf("send after the 408: %v", a)
	}
}

// TestOutsideWindows checks the first-attach window (section 2) and the
// resume window (5.4): past them, an attach answers 404 unknown session.
func TestOutsideWindows(t *testing.T) {
	c := newOutside(t, &tether.Options{FirstAttachWindow: 100 * time.Millisecond, ResumeWindow: 300 * time.Millisecond})
	s := c.negotiate()
	if s.ResumeWindowMs != 300 {
		t.Fatalf("resumeWindowMs %d", s.ResumeWindowMs)
	}
	time.Sleep(600 * time.Millisecond)
	wantError(t, "a poll past the first-attach window", c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil), 404, "unknown session")

	s = c.negotiate()
	w := c.attachWebSocket(s, "&received=0", "")
	w.write(ws.TextMessage, "mhi")
	if f := nextFrame(t, w, "ha"); f != "mhi" {
		t.Fatal(f)
	}
	w.stop()
	time.Sleep(900 * time.Millisecond)
	wantError(t, "a poll past the resume window", c.request("GET", "longpoll?"+s.auth()+"&received=1", nil, nil), 404, "unknown session")
}

// TestOutsideWebSocketDetails checks the token header on a handshake
// (section 3), a subprotocol the server does not know (4.2), and the
// acknowledgement a new WebSocket sends of what earlier requests carried
// (5.2).
func TestOutsideWebSocketDetails(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	if a := c.send(s, "&seq=1", "m1", "m2"); a.status != 204 {
		t.Fatal(a)
	}
	d := ws.Dialer{HandshakeTimeout: outsideTimeout, Subprotocols: []string{"tether.other"}, EnableCompression: true}
	u := "ws" + strings.TrimPrefix(c.base, "http") + "websocket?session=" + s.Session + "&received=0&seq=3"
	conn, resp, err := d.Dial(u, http.Header{"Tether-Token": {s.Token}})
	if err != nil {
		t.Fatalf("handshake with the token in Tether-Token: %v", err)
	}
	w := &wsDown{t: t, conn: conn}
	conn.SetCloseHandler(w.closed)
	t.Cleanup(w.stop)
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "" {
		t.Errorf("the server accepted the extension %q; section 4.2 says none", got)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "" {
		t.Errorf("the server selected %q, which the client did not offer as tether.compact", got)
	}
	var got []string
	for len(got) < 3 {
		f := nextFrame(t, w, "h")
		got = append(got, f)
		if f == "a2" {
			break
		}
	}
	if strings.Join(got, ",") != "m1,m2,a2" {
		t.Errorf("a new WebSocket carried %q; section 5.2 says it acknowledges what send accepted (a2)", got)
	}
}

// TestOutsideProbeIgnored checks section 10.1: longpoll ignores probe=1.
func TestOutsideProbeIgnored(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	if a := c.send(s, "&seq=1", "m1"); a.status != 204 {
		t.Fatal(a)
	}
	if a := c.request("GET", "longpoll?"+s.auth()+"&received=0&probe=1", nil, nil); a.body != "2:m1" {
		t.Errorf("a poll with probe=1: %v, section 10.1 says longpoll ignores the parameter", a)
	}
}

// TestOutsideSSECloseReason checks section 4.3: a line break in a close
// reason is sent as a space.
func TestOutsideSSECloseReason(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	d := c.attachSSE(s, "&received=0")
	if a := c.send(s, "&seq=1", "mclose 4100 a\nb\rc\r\nd"); a.status != 204 {
		t.Fatal(a)
	}
	if f := nextFrame(t, d, "h"); f != "c4100 a b c  d" {
		t.Errorf("close frame %q, section 4.3 says each line break as a space", f)
	}
	// Section 6: attached once the close frame is out, even before the
	// response ended: 404.
	wantError(t, "an attach once the close frame is out", c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil), 404, "unknown session")
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
			}
			return nil, nil
		},
		MaxSessionsPerClient: 1,
		ClientKey:            func(r *http.Request) string { return r.Header.Get("Authorization") },
	})
	wantError(t, "negotiate refused with 401", c.request("POST", "negotiate?v=1", nil, nil), 401, "sign in first")
	wantError(t, "negotiate refused with 403", c.request("POST", "negotiate?v=1", http.Header{"Authorization": {"Bearer banned"}}, nil), 403, "you are banned")
	wantError(t, "negotiate refused with a plain error", c.request("POST", "negotiate?v=1", http.Header{"Authorization": {"Bearer plain"}}, nil), 401, "a plain error")
	ok := http.Header{"Authorization": {"Bearer alice"}}
	if a := c.request("POST", "negotiate?v=1", ok, nil); a.status != 200 {
		t.Fatal(a)
	}
	wantError(t, "a second session of one client", c.request("POST", "negotiate?v=1", ok, nil), 503, "too many sessions for this client")
	// The version is checked before the hook runs? Section 9's order:
	// the query (400) before what the request asks for.
	wantError(t, "negotiate without v, refused by the hook too", c.request("POST", "negotiate", nil, nil), 400, "unsupported protocol version")
}

// TestOutsideIgnoredParameters checks that parameters a request does not
// take are ignored (section 3): compact and acks on a WebSocket, acks on a
// long poll, and an acks value other than 1.
func TestOutsideIgnoredParameters(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	w := c.attachWebSocket(s, "&received=0&compact=1&acks=1", "")
	w.write(ws.TextMessage, "mhi")
	w.write(ws.BinaryMessage, "\x01")
	w.write(ws.TextMessage, "bABC")
	for _, want := range []string{"mhi", "b\x01", "bABC"} {
		if f := nextFrame(t, w, "ha"); f != want {
			t.Errorf("WebSocket with compact=1 in its query: %q, want %q (section 4.2: the subprotocol alone asks for compact)", f, want)
		}
	}
	w.stop()
	if a := c.request("GET", "longpoll?"+s.auth()+"&received=3&acks=1&compact=0", nil, nil); a.status != 200 || a.body != "1:h" || a.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("a poll with acks=1&compact=0: %v, %q", a, a.header.Get("Content-Type"))
	}
}

// TestOutsideWaitingPollAtClientClose checks section 6: a long poll
// waiting when the client's close frame arrives answers 404.
func TestOutsideWaitingPollAtClientClose(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	done := make(chan outsideAnswer, 1)
	go func() { done <- c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil) }()
	time.Sleep(200 * time.Millisecond) // the poll is waiting (heartbeat 1 s)
	if a := c.send(s, "", "c1000"); a.status != 204 {
		t.Fatal(a)
	}
	wantError(t, "a poll waiting at the client's close", <-done, 404, "unknown session")
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

// TestOutsideCounts checks the counting rules of sections 2, 3, 4, 5.1
// and 10.1 that need no transport of their own.
func TestOutsideCounts(t *testing.T) {
	c := newOutside(t, &tether.Options{FirstAttachWindow: 5 * time.Second, ResumeWindow: 300 * time.Millisecond})
	s := c.negotiate()
	if a := c.send(s, "&seq=1", "m1", "m2"); a.status != 204 {
		t.Fatal(a)
	}
	// A probe acknowledges nothing: received=0 is not stale after it.
	d := c.attach("sse", s, "&received=2&probe=1")
	d.stop()
	if a := c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil); a.body != "2:m12:m2" {
		t.Errorf("a poll after a probe stating received=2: %v, section 10.1 says the probe acknowledges nothing", a)
	}
	// a0 is a count; a count at or below one stated changes nothing.
	for _, q := range []string{"&received=1", "&received=0", "&received=1"} {
		if a := c.send(s, q); a.status != 204 {
			t.Errorf("send%s: %v", q, a)
		}
	}
	if a := c.send(s, "", "a0"); a.status != 204 {
		t.Errorf("send of a0: %v", a)
	}
	// The token of a session is no Last-Event-ID: values that are not
	// counts are ignored (section 3).
	for _, id := range []string{"02", "-2", "+2", "2.0", "2x"} {
		resp, stop := c.open("GET", "sse?"+s.auth()+"&received=1", http.Header{"Last-Event-Id": {id}})
		b := make([]byte, 4096)
		n, _ := io.ReadAtLeast(resp.Body, b, 1)
		for n < len(b) && !strings.Contains(string(b[:n]), "data:m") {
			m, err := resp.Body.Read(b[n:])
			if err != nil {
				break
			}
			n += m
		}
		stop()
		if !strings.Contains(string(b[:n]), "id:2\ndata:m2\n") {
			t.Errorf("sse with received=1 and Last-Event-ID %q: %q; section 3 says the header is ignored", id, b[max(0, n-40):n])
		}
	}
	// The first-attach window is never longer than resumeWindowMs.
	s = c.negotiate()
	time.Sleep(700 * time.Millisecond)
	wantError(t, "a poll past the resume window, within FirstAttachWindow", c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil), 404, "unknown session")
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

// TestOutsideProbeEnds checks section 10.1: a probe ends as at its byte
// limit when its session ends, with no close frame.
func TestOutsideProbeEnds(t *testing.T) {
	for _, name := range []string{"sse", "streaming"} {
		c := newOutside(t, nil)
		s := c.negotiate()
		d := c.attach(name, s, "&received=0&probe=1")
		if a := c.send(s, "", "c1000"); a.status != 204 {
			t.Fatal(a)
		}
		wantEndWithoutFrames(t, d, name+" probe when its session ends")
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

// TestOutsideBurstHeartbeat checks sections 4.5 and 5.3: a stream sends a
// heartbeat 100 ms after the last batch of a burst, long before
// heartbeatMs.
func TestOutsideBurstHeartbeat(t *testing.T) {
	c := newOutside(t, &tether.Options{HeartbeatInterval: time.Minute})
	for _, name := range []string{"sse", "streaming"} {
		s := c.negotiate()
		d := c.attach(name, s, "&received=0")
		if a := c.send(s, "&seq=1", "m1", "m2"); a.status != 204 {
			t.Fatal(a)
		}
		for _, want := range []string{"m1", "m2", "h"} {
			// The reader waits 5 s at most, far less than the minute of
			// heartbeatMs: the h is the burst's.
			if f, err := d.next(); err != nil || f != want {
				t.Errorf("%s: %q %v, want %q", name, f, err, want)
				break
			}
		}
		d.stop()
	}
}

// TestOutsideSendWaitsForRoom checks section 8's queue limit from client
// to server: a send is held while the application's queue is full, and a
// newer send of the session supersedes it, which then answers 503 try
// again.
func TestOutsideSendWaitsForRoom(t *testing.T) {
	// An application that never reads.
	c := newOutsideServer(t, tether.HandlerFunc(func(s *session.Session) { <-s.Context().Done() }), &tether.Options{MaxQueuedBytes: 16 << 10})
	s := c.negotiate()
	frames := outsideTexts(20)
	first := make(chan outsideAnswer, 1)
	go func() { first <- c.send(s, "&seq=1", frames...) }()
	select {
	case a := <-first:
		t.Fatalf("a send over the queue limit answered %v at once; section 8 says it is held until there is room", a)
	case <-time.After(300 * time.Millisecond):
	}
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		req := c.newRequest(ctx, "POST", "send?"+s.auth()+"&seq=1", nil, outsideBatch(frames...))
		resp, err := c.hc.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		second <- err
	}()
	wantError(t, "a held send superseded by a newer one", <-first, 503, "try again")
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("the newer send, still held: %v", err)
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

// TestOutsideStreamLimitFromQueue checks section 8: the stream byte limit
// is at most half the queue limit.
func TestOutsideStreamLimitFromQueue(t *testing.T) {
	c := newOutside(t, &tether.Options{MaxQueuedBytes: 64 << 10})
	s := c.negotiate()
	d := c.attach("streaming", s, "&received=0")
	frames := outsideTexts(56)
	if a := c.send(s, "&seq=1", frames...); a.status != 204 {
		t.Fatal(a)
	}
	got := messagesToEnd(t, d)
	// 32 KiB of response: about 30 messages of 1 KiB, never all 56.
	if got == 0 || got == len(frames) {
		t.Errorf("a response under a 64 KiB queue limit carried %d messages of 1 KiB; section 8 says it ends after half the queue limit", got)
	}
}

// TestOutsideStaleAttachDisturbsNothing checks section 3: a stale attach
// answers 409 and the connection attached goes on.
func TestOutsideStaleAttachDisturbsNothing(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	w := c.attachWebSocket(s, "&received=0", "")
	w.write(ws.TextMessage, "m1")
	if f := nextFrame(t, w, "ha"); f != "m1" {
		t.Fatal(f)
	}
	w.write(ws.TextMessage, "a1")
	// The a1 has been read once the next echo comes.
	w.write(ws.TextMessage, "m2")
	if f := nextFrame(t, w, "ha"); f != "m2" {
		t.Fatal(f)
	}
	for _, ep := range []string{"longpoll", "sse", "streaming"} {
		wantError(t, "a stale "+ep, c.request("GET", ep+"?"+s.auth()+"&received=0", nil, nil), 409, "stale attach")
	}
	wantError(t, "a stale WebSocket", c.refusedWebSocket(s, "&received=0", nil), 409, "stale attach")
	w.write(ws.TextMessage, "m3")
	if f := nextFrame(t, w, "ha"); f != "m3" {
		t.Errorf("the attached WebSocket after stale attaches: %q", f)
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
