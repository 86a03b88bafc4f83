package conformance_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
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
	d := ws.Dialer{HandshakeTimeout: outsideTimeout, Subprotocols: []string{"tether.other"}}
	u := "ws" + strings.TrimPrefix(c.base, "http") + "websocket?session=" + s.Session + "&received=0&seq=3"
	conn, resp, err := d.Dial(u, http.Header{"Tether-Token": {s.Token}})
	if err != nil {
		t.Fatalf("handshake with the token in Tether-Token: %v", err)
	}
	w := &wsDown{t: t, conn: conn}
	conn.SetCloseHandler(func(code int, text string) error { w.closeCode, w.closeText = code, text; return nil })
	t.Cleanup(w.stop)
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
