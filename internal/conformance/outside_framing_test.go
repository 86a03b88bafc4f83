package conformance_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
)

// TestOutsideCompact checks section 4.6 on the three HTTP downstreams and
// the tether.compact subprotocol of section 4.2: the same messages come,
// delimited as stated (the readers check the framing).
func TestOutsideCompact(t *testing.T) {
	sent := []string{"mhello", "mtwo\nlines", "m\x1e", "b\x00\x01\x02", "m" + strings.Repeat("é", 100)}
	for _, name := range outsideTransports {
		t.Run(name, func(t *testing.T) {
			c := newOutside(t, nil)
			s := c.negotiate()
			var d outsideDown
			var w *wsDown
			if name == "websocket" {
				w = c.attachWebSocket(s, "&received=0", "tether.compact")
				if !w.compact {
					t.Fatal("the server did not select tether.compact (section 4.2)")
				}
				d = w
			} else {
				d = c.attach(name, s, "&received=0&compact=1")
			}
			up := &outsideUp{c: c, s: s, w: w, next: 1}
			up.frames(sent...)
			for i, want := range sent {
				f := nextFrame(t, d, "ha")
				got, _ := decodeMessage(t, f)
				w, _ := decodeMessage(t, want)
				if got != w {
					t.Fatalf("echo %d: %q, want %q", i+1, f, want)
				}
				if name == "sse" && f[0] == 'm' && strings.ContainsAny(f, "\r\n\x1e") {
					t.Errorf("sse compact: %q sent as m; section 4.6 says M", f)
				}
			}
			up.frames("mclose 4100 a\nb\x1ec")
			want := "c4100 a\nb\x1ec"
			if name == "sse" {
				want = "c4100 a b c"
			}
			if f := nextFrame(t, d, "ha"); f != want {
				t.Errorf("close frame %q, section 4.6 says %q", f, want)
			}
		})
	}
	t.Run("LEB128", func(t *testing.T) {
		// Section 4.6's example: a 64-byte text message takes 66 bytes.
		c := newOutside(t, nil)
		s := c.negotiate()
		msg := strings.Repeat("x", 64)
		if a := c.send(s, "&seq=1", "m"+msg); a.status != 204 {
			t.Fatal(a)
		}
		a := c.request("GET", "longpoll?"+s.auth()+"&received=0&compact=1", nil, nil)
		if a.body != "\x41m"+msg {
			t.Errorf("compact poll: %q, section 4.6 says \\x41m and the text", a.body)
		}
		if a := c.send(s, "&seq=2", "m"+strings.Repeat("y", 199)); a.status != 204 {
			t.Fatal(a)
		}
		a = c.request("GET", "longpoll?"+s.auth()+"&received=1&compact=1", nil, nil)
		if want := outsideLEB128(200) + "m" + strings.Repeat("y", 199); a.body != want || want[:2] != "\xc8\x01" {
			t.Errorf("compact poll: %.10q, want %.10q", a.body, want)
		}
	})
}

// TestOutsideLastEventID checks section 4.3's ids and Last-Event-ID.
func TestOutsideLastEventID(t *testing.T) {
	c := newOutside(t, nil)
	var s outsideSession
	for _, tc := range []struct {
		query, lastEventID string
		first              string
	}{
		{"", "2", "m3"},
		{"&received=1", "2", "m3"},
		{"&received=2", "1", "m3"},
		{"&received=1", "x", "m2"},
		{"&received=2", "", "m3"},
	} {
		s = c.negotiate()
		if a := c.send(s, "&seq=1", "m1", "m2", "m3"); a.status != 204 {
			t.Fatal(a)
		}
		resp, stop := c.open("GET", "sse?"+s.auth()+tc.query, http.Header{"Last-Event-Id": {tc.lastEventID}})
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("sse%s Last-Event-ID %q: %d %q", tc.query, tc.lastEventID, resp.StatusCode, b)
			stop()
			continue
		}
		r := bufio.NewReader(resp.Body)
		var lines []string
		for len(lines) < 50 {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			lines = append(lines, line)
			if strings.HasPrefix(line, "data:m") {
				break
			}
		}
		stop()
		got := strings.Join(lines[max(0, len(lines)-2):], "")
		want := "id:" + tc.first[1:] + "\ndata:" + tc.first + "\n"
		if got != want {
			t.Errorf("sse%s Last-Event-ID %q: first message event %q, section 4.3 says %q", tc.query, tc.lastEventID, got, want)
		}
	}
	// Neither received nor a count in Last-Event-ID.
	wantError(t, "sse with Last-Event-ID x alone", c.request("GET", "sse?"+s.auth(), http.Header{"Last-Event-Id": {"x"}}, nil), 400, "bad request: missing received")
}

// TestOutsideProbe checks section 10.1: a probe answers as an attach,
// attaches nothing and supersedes nothing.
func TestOutsideProbe(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	w := c.attachWebSocket(s, "&received=0", "")
	for _, name := range []string{"sse", "streaming"} {
		// A compact probe answers as a compact attach would (the
		// readers check the framing and Content-Type).
		c.attach(name, s, "&received=0&probe=1&compact=1").stop()
		d := c.attach(name, s, "&received=0&probe=1")
		if a := c.send(s, "&seq="+strconv.Itoa(map[string]int{"sse": 1, "streaming": 2}[name]), "m"+name); a.status != 204 {
			t.Fatal(a)
		}
		if f := nextFrame(t, w, "ha"); f != "m"+name {
			t.Errorf("after a %s probe the WebSocket carries %q, section 10.1 says it supersedes nothing", name, f)
		}
		d.stop()
		wantError(t, name+" probe with a wrong token", c.request("GET", name+"?session="+s.Session+"&token=AAAAAAAAAAAAAAAAAAAAAA&received=0&probe=1", nil, nil), 404, "unknown session")
	}
}

// TestOutsideHandshakeRefusals checks section 3's refused handshakes.
func TestOutsideHandshakeRefusals(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	live := c.attachWebSocket(s, "&received=0", "")
	u := strings.TrimPrefix(c.base, "http://")
	host, _, _ := strings.Cut(u, "/")
	for _, tc := range []struct{ name, headers string }{
		{"version 12", "Sec-WebSocket-Version: 12\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"},
		{"no version", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"},
		{"a short key", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n"},
		{"no key", "Sec-WebSocket-Version: 13\r\n"},
	} {
		a, resp := c.raw("GET /rt/websocket?" + s.auth() + "&received=0 HTTP/1.1\r\nHost: " + host +
			"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + tc.headers + "\r\n")
		if a.status != 400 || !strings.HasPrefix(a.body, "bad request: ") || resp.Header.Get("Sec-WebSocket-Version") != "13" {
			t.Errorf("handshake with %s: %v, Sec-WebSocket-Version %q; section 3 says 400 bad request: <detail> with Sec-WebSocket-Version: 13", tc.name, a, resp.Header.Get("Sec-WebSocket-Version"))
			continue
		}
		// Section 9's format, whatever the detail.
		wantError(t, "handshake with "+tc.name, a, 400, strings.TrimSuffix(a.body, "\n"))
		if strings.Count(a.body, "\n") != 1 {
			t.Errorf("handshake with %s: body %q is not one line", tc.name, a.body)
		}
		t.Logf("handshake with %s: %q", tc.name, a.body)
	}
	// The refusals attached nothing: the live WebSocket goes on.
	live.write(ws.TextMessage, "mstill")
	if f := nextFrame(t, live, "ha"); f != "mstill" {
		t.Errorf("live WebSocket: %q", f)
	}
}

// TestOutsideUnreadBody checks section 9: a GET carrying a body gets the
// answer it would get without it and Connection: close.
func TestOutsideUnreadBody(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	host, _, _ := strings.Cut(strings.TrimPrefix(c.base, "http://"), "/")
	a, resp := c.raw("GET /rt/longpoll?" + s.auth() + "&received=5x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 10\r\n\r\n")
	if a.status != 400 || a.body != "bad request: invalid received\n" || !resp.Close {
		t.Errorf("GET with a body: %v, close %v; section 9 says the same answer and Connection: close", a, resp.Close)
	}
}

// TestOutsideCORS checks section 7's preflight and allowed origin.
func TestOutsideCORS(t *testing.T) {
	c := newOutside(t, &tether.Options{AllowedOrigins: []string{"https://app.example"}})
	a := c.request("OPTIONS", "send", http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"tether-token"}}, nil)
	if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("preflight: %v %v; sections 7 and 9 say 204 with Access-Control-Allow-Origin", a, a.header)
	}
	a = c.request("POST", "negotiate?v=1", http.Header{"Origin": {"https://app.example"}}, nil)
	if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("negotiate from an allowed origin: %v, Access-Control-Allow-Origin %q", a, a.header.Get("Access-Control-Allow-Origin"))
	}
	wantError(t, "negotiate from another origin", c.request("POST", "negotiate?v=1", http.Header{"Origin": {"https://other.example"}}, nil), 403, "origin not allowed")
	a = c.request("OPTIONS", "send", http.Header{"Origin": {"https://other.example"}, "Access-Control-Request-Method": {"POST"}}, nil)
	wantError(t, "a preflight from another origin", a, 403, "origin not allowed")
	// An error answered to an allowed origin carries the header too, so
	// that its page can read the status.
	a = c.request("GET", "longpoll?session=AAAAAAAAAAAAAAAAAAAAAA&token=AAAAAAAAAAAAAAAAAAAAAA&received=0", http.Header{"Origin": {"https://app.example"}}, nil)
	if a.status != 404 || a.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("404 to an allowed origin: %v, Access-Control-Allow-Origin %q", a, a.header.Get("Access-Control-Allow-Origin"))
	}
	// "*" in the allow-list allows every origin, named in the answer.
	c = newOutside(t, &tether.Options{AllowedOrigins: []string{"*"}})
	a = c.request("POST", "negotiate?v=1", http.Header{"Origin": {"https://any.example"}}, nil)
	if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "https://any.example" {
		t.Errorf("negotiate from any origin with *: %v, Access-Control-Allow-Origin %q; section 7 says the request's origin", a, a.header.Get("Access-Control-Allow-Origin"))
	}
}

// TestOutsideHandshakeOrder checks section 9's order of the checks on
// websocket: the session, then the handshake, then the attach's verdict.
func TestOutsideHandshakeOrder(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	if a := c.send(s, "&seq=1&received=0", "m1"); a.status != 204 {
		t.Fatal(a)
	}
	if a := c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil); a.body != "2:m1" {
		t.Fatal(a)
	}
	if a := c.send(s, "&received=1"); a.status != 204 {
		t.Fatal(a)
	}
	// received=0 is stale now: the handshake is checked first.
	wantError(t, "a stale GET websocket that is no handshake", c.request("GET", "websocket?"+s.auth()+"&received=0", nil, nil), 400, "bad request: not a WebSocket handshake")
	wantError(t, "a stale WebSocket handshake", c.refusedWebSocket(s, "&received=0", nil), 409, "stale attach")
	unknown := outsideSession{Session: "AAAAAAAAAAAAAAAAAAAAAA", Token: s.Token}
	wantError(t, "a GET websocket that is no handshake for an unknown session", c.request("GET", "websocket?"+unknown.auth()+"&received=0", nil, nil), 404, "unknown session")
}

// raw sends a request written byte by byte on a connection of its own
// and reads the answer.
func (c *outsideClient) raw(request string) (outsideAnswer, *http.Response) {
	c.t.Helper()
	host, _, _ := strings.Cut(strings.TrimPrefix(c.base, "http://"), "/")
	conn, err := net.DialTimeout("tcp", host, outsideTimeout)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(outsideTimeout))
	if _, err := conn.Write([]byte(request)); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return outsideAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}, resp
}

// TestOutsideCompactCloseFrame checks where the close frame travels on a
// WebSocket with tether.compact (sections 4.2 and 6): a text message, or
// the last frame of the last batch; nothing after it.
func TestOutsideCompactCloseFrame(t *testing.T) {
	c := newOutside(t, nil)
	for _, tc := range []struct {
		name, query string
		frames      []string // sent before the attach
		want        string
	}{
		{"after messages", "&received=0", []string{"m1", "m2", "mclose 4100 bye"}, "c4100 bye"},
		{"a resume gap", "&received=9", nil, "c4000 resume gap"},
	} {
		s := c.negotiate()
		if len(tc.frames) > 0 {
			if a := c.send(s, "&seq=1", tc.frames...); a.status != 204 {
				t.Fatal(a)
			}
		}
		w := c.attachWebSocket(s, tc.query, "tether.compact")
		var last string
		var kinds []string
		for {
			w.conn.SetReadDeadline(timeIn())
			typ, p, err := w.conn.ReadMessage()
			if err != nil {
				break
			}
			if typ == ws.TextMessage {
				kinds = append(kinds, "text")
				last = string(p)
				continue
			}
			kinds = append(kinds, "batch")
			frames, err := outsideParseCompact(p)
			if err != nil || len(frames) == 0 {
				t.Fatalf("batch %q: %v", p, err)
			}
			last = frames[len(frames)-1]
		}
		if last != tc.want || w.closeCode == 0 {
			t.Errorf("%s: the last frame %q (messages %v), WebSocket close %d; sections 4.2 and 6 say %q last, then the close", tc.name, last, kinds, w.closeCode, tc.want)
		}
		if tc.frames == nil && (len(kinds) != 1 || kinds[0] != "text") {
			t.Errorf("%s: the close frame alone came as %v; section 3 says a text message", tc.name, kinds)
		}
	}
}

// TestOutsideBoundaries checks section 4.4: the boundary is drawn for
// each response.
func TestOutsideBoundaries(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	seen := map[string]bool{}
	for i := range 3 {
		d := c.attachStreaming(s, "&received=0")
		if seen[d.boundary] {
			t.Errorf("response %d has the boundary %q of an earlier one", i+1, d.boundary)
		}
		seen[d.boundary] = true
		d.stop()
	}
}

// TestOutsideEdges checks a few edges sections 3, 4 and 4.2 settle: the
// subprotocol among others, a Last-Event-ID ahead of what was sent, a
// client's close reason of exactly 123 bytes on a WebSocket.
func TestOutsideEdges(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	d := ws.Dialer{HandshakeTimeout: outsideTimeout, Subprotocols: []string{"chat", "tether.compact", "other"}}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(c.base, "http")+"websocket?"+s.auth()+"&received=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "tether.compact" {
		t.Errorf("offered chat, tether.compact, other: the server selected %q; section 4.2 says tether.compact", got)
	}

	resp2, stop := c.open("GET", "sse?"+s.auth(), http.Header{"Last-Event-Id": {"5"}})
	b := make([]byte, 8192)
	n, _ := io.ReadAtLeast(resp2.Body, b, 1)
	for !strings.Contains(string(b[:n]), "data:c") {
		m, err := resp2.Body.Read(b[n:])
		if err != nil {
			break
		}
		n += m
	}
	stop()
	if !strings.HasSuffix(string(b[:n]), "data:c4000 resume gap\n\n") {
		t.Errorf("sse with a Last-Event-ID ahead: %q; section 3 says c4000 resume gap", b[max(0, n-60):n])
	}

	s = c.negotiate()
	w := c.attachWebSocket(s, "&received=0", "")
	w.write(ws.TextMessage, "c4100 "+strings.Repeat("é", 61)+"x")
	if f, err := w.next(); err != io.EOF || w.closeCode != 1000 {
		t.Errorf("a client's close reason of 123 bytes: %q %v, WebSocket close %d %q; section 6 says 1000", f, err, w.closeCode, w.closeText)
	}
}
