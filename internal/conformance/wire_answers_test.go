package conformance_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/wire"
)

// Each test here checks, to the byte, an answer PROTOCOL.md gives to a
// question a client written from it alone had to guess.

// wsFrames reads n WebSocket messages, heartbeats and acknowledgements
// left out (they come when they are due), and returns them as wsTranscript
// does.
func wsFrames(t *testing.T, conn *ws.Conn, n int) string {
	t.Helper()
	got, _ := wsUntilAck(t, conn, n, 0)
	return got
}

// wsUntilAck reads WebSocket messages until n of them (heartbeats and
// acknowledgements left out) and an acknowledgement of at least ack have
// come, and returns the messages as wsTranscript does and the counts of the
// acknowledgements.
func wsUntilAck(t *testing.T, conn *ws.Conn, n int, ack uint64) (string, []uint64) {
	t.Helper()
	var got []string
	var acks []uint64
	for len(got) < n || (ack > 0 && (len(acks) == 0 || acks[len(acks)-1] < ack)) {
		typ, p, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %q and acknowledgements %v: %v", got, acks, err)
		}
		switch {
		case typ == ws.BinaryMessage:
			got = append(got, fmt.Sprintf("binary:%d bytes", len(p)))
		case string(p) == "h":
		case p[0] == 'a':
			count, err := strconv.ParseUint(string(p[1:]), 10, 64)
			if err != nil {
				t.Fatalf("acknowledgement %q: %v", p, err)
			}
			acks = append(acks, count)
		default:
			got = append(got, "text:"+string(p))
		}
	}
	return strings.Join(got, " | "), acks
}

// increasing reports whether counts only grow.
func increasing(counts []uint64) bool {
	for i := 1; i < len(counts); i++ {
		if counts[i] <= counts[i-1] {
			return false
		}
	}
	return true
}

// TestWireWebSocketRefusals: a refused WebSocket attach is an HTTP answer
// before the upgrade; an attach whose received is ahead of what was sent
// opens, carries the close frame and closes (PROTOCOL.md section 3).
func TestWireWebSocketRefusals(t *testing.T) {
	e := newWireEnv(t, nil)
	s := e.negotiate(t)
	wrong := s
	wrong.Token = strings.Repeat("A", len(s.Token))
	if got := e.wsAttachRefused(t, wrong, "received=0"); got != "404 unknown session\n" {
		t.Errorf("wrong token: %q", got)
	}
	if got := e.wsAttachRefused(t, s, "seq=1"); got != "400 bad request: missing received\n" {
		t.Errorf("without received: %q", got)
	}
	// The client acknowledges the echo of one message, then an old
	// attach stating 0 arrives.
	if got := e.exact(t, "POST", "send?seq=1&"+s.query(), nil, wireBatch("mx")); got != "204 " {
		t.Fatalf("send: %q", got)
	}
	if got := e.exact(t, "POST", "send?received=1&"+s.query(), nil, nil); got != "204 " {
		t.Fatalf("acknowledging send: %q", got)
	}
	if got := e.wsAttachRefused(t, s, "received=0&seq=2"); got != "409 stale attach\n" {
		t.Errorf("stale attach: %q", got)
	}
	// No seq on a fresh attach: the first message is number 1.
	s = e.negotiate(t)
	conn := e.wsDial(t, s, "received=0")
	conn.WriteMessage(ws.TextMessage, []byte("mfirst"))
	if got := wsFrames(t, conn, 1); got != "text:mfirst" {
		t.Errorf("attach without seq: %q, want the echo", got)
	}
	conn.Close()
	// received ahead of what was sent: a gap that cannot be filled.
	s = e.negotiate(t)
	conn = e.wsDial(t, s, "received=5&seq=1")
	if got, want := wsTranscript(conn), "text:c4000 resume gap | close 4000 resume gap"; got != want {
		t.Errorf("received ahead:\n got %s\nwant %s", got, want)
	}
	if got := e.wsAttachRefused(t, s, "received=0"); got != "404 unknown session\n" {
		t.Errorf("attach after the gap's close frame: %q", got)
	}
}

// TestWireQueryParameters: which parameters each request needs (PROTOCOL.md
// section 3).
func TestWireQueryParameters(t *testing.T) {
	e := newWireEnv(t, nil)
	s := e.negotiate(t)
	q := s.query()
	for _, c := range []struct{ method, endpoint, body, want string }{
		{"POST", "send?" + q, string(wireBatch("mx")), "400 bad request: missing seq\n"},
		{"POST", "send?seq=0&" + q, string(wireBatch("mx")), "400 bad request: missing seq\n"},
		{"POST", "send?" + q, "", "204 "}, // nothing numbered: no seq needed
		{"POST", "send?seq=1&" + q, string(wireBatch("mx")), "204 "},
		{"POST", "send?seq=2&received=1&" + q, string(wireBatch("my")), "204 "}, // received acknowledges
		{"GET", "longpoll?" + q, "", "400 bad request: missing received\n"},
		{"GET", "streaming?" + q, "", "400 bad request: missing received\n"},
		{"GET", "sse?" + q, "", "400 bad request: missing received\n"},
		{"GET", "longpoll?received=01&" + q, "", "400 bad request: invalid received\n"},
		{"GET", "longpoll?received=1&" + q, "", "200 2:my"},      // the echo of message 2
		{"GET", "longpoll?received=2&seq=0&" + q, "", "200 1:h"}, // seq: a WebSocket's alone
	} {
		if got := e.exact(t, c.method, c.endpoint, nil, []byte(c.body)); got != c.want {
			// The query without the session's, which ends it.
			t.Errorf("%s %s: %q, want %q", c.method, strings.TrimSuffix(c.endpoint, q), got, c.want)
		}
	}
	// sse: Last-Event-ID may stand for received.
	resp := e.do(t, "GET", "sse?"+q, http.Header{"Last-Event-Id": {"2"}}, nil)
	got, err := readUntil(resp.Body, "data:h\n\n")
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("sse with Last-Event-ID: %d %q %v", resp.StatusCode, got, err)
	}
}

// TestWireCloseHandshake: a close frame is never answered with one; on a
// WebSocket the server's close frame is followed by a WebSocket close with
// its code and reason, and the client's close frame by a WebSocket close
// 1000, the client's receipt (PROTOCOL.md section 6).
func TestWireCloseHandshake(t *testing.T) {
	e := newWireEnv(t, nil)

	// The server closes.
	s := e.negotiate(t)
	conn := e.wsDial(t, s, "received=0&seq=1")
	conn.WriteMessage(ws.TextMessage, []byte("mclose 4100 bye"))
	if got, want := wsTranscript(conn), "text:c4100 bye | close 4100 bye"; got != want {
		t.Errorf("server close:\n got %s\nwant %s", got, want)
	}

	// The client closes on the WebSocket: no close frame comes back.
	s = e.negotiate(t)
	conn = e.wsDial(t, s, "received=0&seq=1")
	conn.WriteMessage(ws.TextMessage, []byte("c4100 done here"))
	if got, want := wsTranscript(conn), "close 1000 "; got != want {
		t.Errorf("client close:\n got %s\nwant %s", got, want)
	}
	if got := e.wsAttachRefused(t, s, "received=0"); got != "404 unknown session\n" {
		t.Errorf("attach after the client's close: %q", got)
	}
	// What the application is told.
	err := e.closeError(t, s)
	if got := fmt.Sprintf("%d %q", wire.CloseStatus(err), err.Error()); got != `4100 "tether: session closed: 4100 done here"` {
		t.Errorf("the application got %s", got)
	}

	// The client closes through send while a stream is attached: the
	// stream ends with no close frame.
	s = e.negotiate(t)
	resp := e.do(t, "GET", "sse?received=0&"+s.query(), nil, nil)
	if _, err := readUntil(resp.Body, "data:h\n\n"); err != nil {
		t.Fatal(err)
	}
	if got := e.exact(t, "POST", "send?"+s.query(), nil, wireBatch("c1000")); got != "204 " {
		t.Errorf("close by send: %q", got)
	}
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Contains(string(rest), "data:c") {
		t.Errorf("the stream after the client's close: %q, %v; want its end, no close frame", rest, err)
	}
	err = e.closeError(t, s)
	if got := fmt.Sprintf("%d %q", wire.CloseStatus(err), err.Error()); got != `1000 "tether: session closed: 1000"` {
		t.Errorf("the application got %s", got)
	}
}

// TestWireCloseDuringLongPoll: a long poll waiting when the client's close
// frame arrives through send has written no status yet: it answers 404
// unknown session, as every later request does (PROTOCOL.md section 6).
func TestWireCloseDuringLongPoll(t *testing.T) {
	attached := make(chan string, 4)
	e := newWireEnv(t, &tether.Options{HeartbeatInterval: 20 * time.Second, Observer: attachObserver(attached)})
	s := e.negotiate(t)
	polled := make(chan string, 1)
	go func() { polled <- e.exact(t, "GET", "longpoll?received=0&"+s.query(), nil, nil) }()
	if got := <-attached; got != "longpoll" {
		t.Fatalf("attached %q, want longpoll", got)
	}
	if got := e.exact(t, "POST", "send?"+s.query(), nil, wireBatch("c1000 bye")); got != "204 " {
		t.Fatalf("close by send: %q", got)
	}
	if got := <-polled; got != "404 unknown session\n" {
		t.Errorf("the waiting poll: %q, want 404 unknown session", got)
	}
}

// attachObserver is a tether.Observer that sends the transport of every
// attach to ch, without blocking (it is called with a session's lock held).
type attachObserver chan<- string

func (o attachObserver) ServerObserver([]string) tether.ServerObserver { return o }
func (o attachObserver) Attached(transport, _ string, _ uint64) {
	select {
	case o <- transport:
	default:
	}
}
func (attachObserver) Negotiated(tether.NegotiateResult) {}
func (attachObserver) Opened()                           {}
func (attachObserver) Detached(string)                   {}
func (attachObserver) MessagesOut(string, int, int)      {}
func (attachObserver) MessagesIn(string, int, int)       {}
func (attachObserver) Dropped()                          {}
func (attachObserver) Finished(string, wire.StatusCode)  {}

// TestWireCloseCodes: a client's close frame carries a code a WebSocket
// close may carry, else it is malformed (PROTOCOL.md section 4; the
// bad-input table has the WebSocket's answer); a
// WebSocket close without a close frame ends the connection, not the
// session (section 6).
func TestWireCloseCodes(t *testing.T) {
	e := newWireEnv(t, nil)
	for _, c := range []struct{ frame, want string }{
		{"c1005 x", "400 bad request: malformed frame: close code 1005 not allowed\n"},
		{"c65536", "400 bad request: malformed frame: invalid close code \"65536\"\n"},
		{"c3000 app", "204 "},
	} {
		s := e.negotiate(t)
		if got := e.exact(t, "POST", "send?"+s.query(), nil, wireBatch(c.frame)); got != c.want {
			t.Errorf("send %q: %q, want %q", c.frame, got, c.want)
		}
	}
	s := e.negotiate(t)
	conn := e.wsDial(t, s, "received=0&seq=1")
	conn.WriteMessage(ws.TextMessage, []byte("mone"))
	conn.WriteMessage(ws.CloseMessage, ws.FormatCloseMessage(4100, "gone"))
	if got, want := wsTranscript(conn), "text:mone | close 4100 "; got != want {
		t.Errorf("WebSocket close without a close frame:\n got %s\nwant %s", got, want)
	}
	if got := e.exact(t, "GET", "longpoll?received=1&"+s.query(), nil, nil); got != "200 1:h" {
		t.Errorf("the session after the WebSocket close: %q, want a poll answered 1:h", got)
	}
}

// closeError returns the error the application's OnClose got for s.
func (e *wireEnv) closeError(t *testing.T, s wireSession) error {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if v, ok := e.ends.Load(s.Session); ok {
			return v.(error)
		}
	}
	t.Fatalf("session %s did not end", s.Session)
	return nil
}

// TestWireCloseReasons: a reason over 123 bytes from the client is a
// malformed frame; from the application it is cut to 123 bytes at a
// character boundary (PROTOCOL.md section 4).
func TestWireCloseReasons(t *testing.T) {
	e := newWireEnv(t, nil)
	long := strings.Repeat("r", 124)
	s := e.negotiate(t)
	if got := e.exact(t, "POST", "send?"+s.query(), nil, wireBatch("c1000 "+long)); got != "400 bad request: malformed frame: close reason longer than 123 bytes\n" {
		t.Errorf("send: %q", got)
	}
	conn := e.wsDial(t, s, "received=0&seq=1")
	conn.WriteMessage(ws.TextMessage, []byte("c1000 "+long))
	if got, want := wsTranscript(conn), "text:c4003 malformed frame | close 4003 malformed frame"; got != want {
		t.Errorf("WebSocket:\n got %s\nwant %s", got, want)
	}

	s = e.negotiate(t)
	conn = e.wsDial(t, s, "received=0&seq=1")
	conn.WriteMessage(ws.TextMessage, []byte("mclose 4100 "+strings.Repeat("é", 70))) // 140 bytes
	cut := strings.Repeat("é", 61)                                                    // 122 bytes
	if got, want := wsTranscript(conn), "text:c4100 "+cut+" | close 4100 "+cut; got != want {
		t.Errorf("the application's long reason:\n got %s\nwant %s", got, want)
	}
}

// TestWireEmptyTextMessage: "an empty text message" is a WebSocket text
// message of no bytes, not even a type byte; "m" alone is a text message
// of no characters (PROTOCOL.md section 4.2).
func TestWireEmptyTextMessage(t *testing.T) {
	e := newWireEnv(t, nil)
	s := e.negotiate(t)
	conn := e.wsDial(t, s, "received=0&seq=1")
	conn.WriteMessage(ws.TextMessage, []byte("m"))
	conn.WriteMessage(ws.BinaryMessage, nil)
	if got := wsFrames(t, conn, 2); got != "text:m | binary:0 bytes" {
		t.Errorf("empty messages: %q, want their echoes", got)
	}
	conn.WriteMessage(ws.TextMessage, nil)
	if got, want := wsTranscript(conn), "text:c4003 malformed frame | close 4003 malformed frame"; got != want {
		t.Errorf("empty WebSocket text message:\n got %s\nwant %s", got, want)
	}
}

// TestWireAcknowledgements: acknowledgements count every message received
// so far in the session, on both sides; the server sends them on the
// WebSocket only; a client that never acknowledges is a slow consumer
// (PROTOCOL.md section 5).
func TestWireAcknowledgements(t *testing.T) {
	e := newWireEnv(t, &tether.Options{MaxQueuedBytes: 4 << 10})
	s := e.negotiate(t)
	conn := e.wsDial(t, s, "received=0&seq=1")
	// However the acknowledgements fall among the echoes, each counts
	// every message so far: they grow, and the one after message k is
	// ak, never a count since the last.
	for _, m := range []string{"m1", "m2", "m3"} {
		conn.WriteMessage(ws.TextMessage, []byte(m))
	}
	var all []uint64
	got, acks := wsUntilAck(t, conn, 3, 3)
	if got != "text:m1 | text:m2 | text:m3" {
		t.Errorf("echoes: %q", got)
	}
	all = append(all, acks...)
	conn.WriteMessage(ws.TextMessage, []byte("m4"))
	got, acks = wsUntilAck(t, conn, 1, 4)
	if got != "text:m4" {
		t.Errorf("echo: %q", got)
	}
	all = append(all, acks...)
	// The client's counts are cumulative too: a lower one changes nothing.
	conn.WriteMessage(ws.TextMessage, []byte("a4"))
	conn.WriteMessage(ws.TextMessage, []byte("a2"))
	conn.WriteMessage(ws.TextMessage, []byte("m5"))
	got, acks = wsUntilAck(t, conn, 1, 5)
	if got != "text:m5" {
		t.Errorf("echo after a lower count: %q", got)
	}
	all = append(all, acks...)
	if !increasing(all) || all[len(all)-1] != 5 {
		t.Errorf("acknowledgements %v: want growing counts ending at 5", all)
	}
	conn.Close()

	// HTTP downstreams carry no acknowledgement: the 204 of send is one.
	s = e.negotiate(t)
	if got := e.exact(t, "POST", "send?seq=1&"+s.query(), nil, wireBatch("m1", "m2")); got != "204 " {
		t.Fatalf("send: %q", got)
	}
	if got := e.exact(t, "GET", "longpoll?received=0&"+s.query(), nil, nil); got != "200 2:m12:m2" {
		t.Errorf("longpoll: %q, want the echoes and no acknowledgement", got)
	}

	// A WebSocket client that never acknowledges: once 4 KiB wait, the
	// session closes with 4002.
	s = e.negotiate(t)
	conn = e.wsDial(t, s, "received=0&seq=1")
	msg := "m" + strings.Repeat("x", 1000)
	for range 6 {
		conn.WriteMessage(ws.TextMessage, []byte(msg))
	}
	got = wsTranscript(conn)
	if want := "text:c4002 slow consumer | close 4002 slow consumer"; !strings.HasSuffix(got, want) {
		t.Errorf("a client that never acknowledges: %.60s...%s, want the end %s", got, got[max(0, len(got)-60):], want)
	}
}

// TestWireSendContentType: send ignores the request's Content-Type
// (PROTOCOL.md section 5.2).
func TestWireSendContentType(t *testing.T) {
	e := newWireEnv(t, nil)
	s := e.negotiate(t)
	for i, ct := range []string{"", "application/octet-stream", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"} {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		m := "m" + strconv.Itoa(i)
		if got := e.exact(t, "POST", fmt.Sprintf("send?seq=%d&", i+1)+s.query(), h, wireBatch(m)); got != "204 " {
			t.Errorf("Content-Type %q: %q", ct, got)
		}
	}
	if got := e.exact(t, "GET", "longpoll?received=0&"+s.query(), nil, nil); got != "200 2:m02:m12:m22:m3" {
		t.Errorf("echoes: %q", got)
	}
}

// TestWireOrigin: a same-origin POST carries the page's own origin, which
// the server accepts; another origin is refused (PROTOCOL.md section 7).
func TestWireOrigin(t *testing.T) {
	e := newWireEnv(t, nil)
	own := http.Header{"Origin": {"http://" + e.addr}}
	if got := e.exact(t, "POST", "negotiate?v=1", own, nil); !strings.HasPrefix(got, "200 {") {
		t.Errorf("same-origin negotiate: %q", got)
	}
	s := e.negotiate(t)
	if got := e.exact(t, "POST", "send?seq=1&"+s.query(), own, wireBatch("mx")); got != "204 " {
		t.Errorf("same-origin send: %q", got)
	}
	other := http.Header{"Origin": {"http://localhost.example"}}
	if got := e.exact(t, "POST", "send?seq=2&"+s.query(), other, wireBatch("my")); got != "403 origin not allowed\n" {
		t.Errorf("cross-origin send: %q", got)
	}
}

// TestWireStreamFraming: binary messages in compact SSE, and the CRLF of
// multipart parts, plain and compact (PROTOCOL.md sections 4.4 and 4.6).
func TestWireStreamFraming(t *testing.T) {
	e := newWireEnv(t, nil)
	for _, c := range []struct{ endpoint, want string }{
		{"sse?compact=1&received=0", "id:2\ndata:BAAEC/w==\x1emhi\n\n"},
		{"sse?received=0", "id:1\ndata:BAAEC/w==\n\nid:2\ndata:mhi\n\n"},
		{"streaming?received=0", "Content-Type: application/octet-stream\r\nContent-Length: 12\r\n\r\n5:b\x00\x01\x02\xff3:mhi\r\n--"},
		{"streaming?compact=1&received=0", "Content-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n\x05b\x00\x01\x02\xff\x03mhi\r\n--"},
	} {
		s := e.negotiate(t)
		// Both echoes are queued before the stream attaches, so they
		// travel in one batch.
		if got := e.exact(t, "POST", "send?seq=1&"+s.query(), nil, wireBatch("b\x00\x01\x02\xff", "mhi")); got != "204 " {
			t.Fatalf("send: %q", got)
		}
		resp := e.do(t, "GET", c.endpoint+"&"+s.query(), nil, nil)
		got, err := readUntil(resp.Body, c.want)
		resp.Body.Close()
		if err != nil {
			t.Errorf("%s: %v; got the end %q, want %q", c.endpoint, err, got[max(0, len(got)-200):], c.want)
		}
	}
}

// TestWireErrorBodies: every error Tether answers is one line ending in a
// line feed; net/http's own answers are not Tether's (PROTOCOL.md section 9).
func TestWireErrorBodies(t *testing.T) {
	e := newWireEnv(t, nil)
	for _, c := range []struct{ method, endpoint, want string }{
		{"POST", "negotiate", "400 unsupported protocol version\n"},
		{"GET", "negotiate?v=1", "405 method not allowed\n"},
		{"GET", "nothing", "404 not found\n"},
		{"GET", "longpoll?received=0&session=x&token=y", "404 unknown session\n"},
		{"GET", "longpoll?received=0", "404 unknown session\n"},
		{"GET", "sse?received=0&token=y", "404 unknown session\n"},
		{"POST", "send?session=x", "404 unknown session\n"},
	} {
		if got := e.exact(t, c.method, c.endpoint, nil, nil); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.endpoint, got, c.want)
		}
	}
}

// TestWireMethodNotAllowed: a 405 names the endpoint's methods in its
// Allow header (PROTOCOL.md section 9).
func TestWireMethodNotAllowed(t *testing.T) {
	e := newWireEnv(t, nil)
	s := e.negotiate(t)
	for _, c := range []struct{ method, endpoint, allow string }{
		{"GET", "negotiate?v=1", "POST, OPTIONS"},
		{"PUT", "send?" + s.query(), "POST, OPTIONS"},
		{"POST", "longpoll?received=0", "GET, OPTIONS"},
		{"DELETE", "websocket", "GET, OPTIONS"},
	} {
		resp := e.do(t, c.method, c.endpoint, nil, nil)
		resp.Body.Close()
		if got := fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Allow")); got != "405 "+c.allow {
			t.Errorf("%s %s: %q, want 405 with Allow: %s", c.method, c.endpoint, got, c.allow)
		}
	}
}

// TestWireWebSocketHandshake: a handshake offering a WebSocket version
// other than 13, or a malformed key, answers 400 before any upgrade, naming
// the version the server speaks in Sec-WebSocket-Version (RFC 6455 section
// 4.4), and disturbs nothing: the session's WebSocket goes on; an offer of
// compression is declined (PROTOCOL.md sections 3 and 4.2).
func TestWireWebSocketHandshake(t *testing.T) {
	e := newWireEnv(t, nil)
	s := e.negotiate(t)
	d := ws.Dialer{EnableCompression: true}
	conn, resp, err := d.Dial("ws://"+e.addr+"/rt/websocket?received=0&seq=1&"+s.query(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ext := resp.Header.Values("Sec-WebSocket-Extensions"); len(ext) != 0 {
		t.Errorf("the server accepted extensions %q", ext)
	}
	for _, c := range []struct{ version, key, want string }{
		{"8", "dGhlIHNhbXBsZSBub25jZQ==", "400 13 bad request: websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header\n"},
		{"13", "c2hvcnQ=", "400 13 bad request: websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length\n"},
	} {
		resp := e.do(t, "GET", "websocket?received=0&"+s.query(), http.Header{
			"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
			"Sec-Websocket-Key": {c.key}, "Sec-Websocket-Version": {c.version},
		}, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Version"), body)
		if got != c.want {
			t.Errorf("version %s, key %s: got %q, want %q", c.version, c.key, got, c.want)
		}
	}
	// The refused handshakes attached nothing: the WebSocket open before
	// them carries on, not superseded.
	conn.WriteMessage(ws.TextMessage, []byte("mstill"))
	if got := wsFrames(t, conn, 1); got != "text:mstill" {
		t.Errorf("the WebSocket after the refused handshakes: %s", got)
	}
}

// TestSlowHeadersWithREADMEServer trickles request headers, a byte a
// second, to an http.Server configured as README recommends (its
// ReadHeaderTimeout read from README.md): when the timeout strikes, net/http
// closes the connection without an answer, unless the header line it was
// reading has no colon yet, which it answers 400 with its own body
// (PROTOCOL.md section 9). The two cases run at once: one timeout's wait.
func TestSlowHeadersWithREADMEServer(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`ReadHeaderTimeout: (\d+) \* time\.Second`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md sets no ReadHeaderTimeout in seconds")
	}
	secs, _ := strconv.Atoi(string(m[1]))
	e := newWireEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/rt/", e.srv)
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: time.Duration(secs) * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
	}
	go hs.Serve(ln)
	defer hs.Close()
	// Enough bytes, a second apart, to outlast the timeout.
	slow := map[string]string{
		"closed without an answer": "X: " + strings.Repeat("a", 2*secs+10),
		"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request": "X-" + strings.Repeat("a", 2*secs+10),
	}
	var wg sync.WaitGroup
	for want, header := range slow {
		wg.Go(func() {
			got := trickleRaw(t, ln.Addr().String(), "POST /rt/negotiate?v=1 HTTP/1.1\r\nHost: x\r\n", header, time.Duration(3*secs+10)*time.Second)
			if got != want {
				t.Errorf("headers trickling %.5q...: got %q, want %q", header, got, want)
			}
		})
	}
	wg.Wait()
}

// trickleRaw writes head, then rest a byte a second, and returns every
// byte the server answers until it closes the connection ("closed without
// an answer" for none).
func trickleRaw(t *testing.T, addr, head, rest string, limit time.Duration) string {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(limit))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.WriteString(conn, head)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; i < len(rest); i++ {
			if _, err := conn.Write([]byte{rest[i]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	b, err := io.ReadAll(bufio.NewReader(conn))
	close(stop)
	<-done
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && !ne.Timeout()) {
		return "read: " + err.Error()
	}
	if len(b) == 0 {
		return "closed without an answer"
	}
	return string(b)
}
