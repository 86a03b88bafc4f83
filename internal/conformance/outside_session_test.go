package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

// The outside tests of one session's life over the transports: its
// windows, counts, heartbeats, probes, parameters and queues.

// TestOutsideWindows checks the first-attach window (section 2) and the
// resume window (5.4): past them, an attach answers 404 unknown session.
func TestOutsideWindows(t *testing.T) {
	c := newOutside(t, &tether.Options{FirstAttachWindow: 100 * time.Millisecond, ResumeWindow: 300 * time.Millisecond})
	s := c.negotiate()
	if s.ResumeWindowMs != 300 {
		t.Fatalf("resumeWindowMs %d", s.ResumeWindowMs)
	}
	c.ended(s)
	wantError(t, "a poll past the first-attach window", c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil), 404, "unknown session")

	s = c.negotiate()
	w := c.attachWebSocket(s, "&received=0", "")
	w.write(ws.TextMessage, "mhi")
	if f := nextFrame(t, w, "ha"); f != "mhi" {
		t.Fatal(f)
	}
	w.stop()
	c.ended(s)
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
	c.ended(s)
	wantError(t, "a poll past the resume window, within FirstAttachWindow", c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil), 404, "unknown session")
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
