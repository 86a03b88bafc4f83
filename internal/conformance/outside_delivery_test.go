package conformance_test

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
)

// TestOutsideClientSequence checks section 5.2 on send: duplicates of a
// retried request are dropped, a gap answers 409 sequence gap and closes
// the session with 4000.
func TestOutsideClientSequence(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	if a := c.send(s, "&seq=1", "m1", "m2"); a.status != 204 || a.body != "" {
		t.Fatalf("send: %v, section 5.2 says 204 No Content", a)
	}
	// A retry of 1..2 with one more: only 3 is new.
	if a := c.send(s, "&seq=1", "m1", "m2", "m3"); a.status != 204 {
		t.Fatalf("send retried: %v", a)
	}
	// Entirely duplicates.
	if a := c.send(s, "&seq=2", "m2"); a.status != 204 {
		t.Fatalf("send of a duplicate: %v", a)
	}
	a := c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil)
	if a.body != "2:m12:m22:m3" {
		t.Errorf("poll: %q, want the echoes of 1, 2, 3 once each", a.body)
	}
	// Section 5.1: the server never sends a frames on longpoll.
	wantError(t, "send with a gap", c.send(s, "&seq=5", "m5"), 409, "sequence gap")
	a = c.request("GET", "longpoll?"+s.auth()+"&received=3", nil, nil)
	if a.status != 200 || a.body != "18:c4000 sequence gap" {
		t.Errorf("poll after the gap: %v, section 5.2 says the session closes with 4000", a)
	}
	wantError(t, "poll after the close", c.request("GET", "longpoll?"+s.auth()+"&received=3", nil, nil), 404, "unknown session")
}

// TestOutsideWebSocketSequence checks section 5.2 on a WebSocket: its
// messages are numbered from the attach's seq, duplicates dropped, a gap
// closes with 4000 sequence gap; and the server's a frames.
func TestOutsideWebSocketSequence(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	if a := c.send(s, "&seq=1", "m1", "m2"); a.status != 204 {
		t.Fatal(a)
	}
	w := c.attachWebSocket(s, "&received=0&seq=2", "")
	// 2 is a duplicate, 3 and 4 are new.
	w.write(ws.TextMessage, "m2")
	w.write(ws.TextMessage, "m3")
	w.write(ws.BinaryMessage, "4")
	var got []string
	acked := 0
	for len(got) < 4 || acked < 4 {
		f := nextFrame(t, w, "h")
		if f[0] == 'a' {
			n, err := strconv.Atoi(f[1:])
			if err != nil || n < acked || n > 4 || f[1:] != strconv.Itoa(n) {
				t.Fatalf("acknowledgement %q after %d, section 5.2 says a cumulative count", f, acked)
			}
			acked = n
			continue
		}
		got = append(got, f)
	}
	if strings.Join(got, ",") != "m1,m2,m3,b4" {
		t.Errorf("echoes %q, want m1, m2, m3, b4", got)
	}
	// The client acknowledges all four, and attaches again numbering
	// its next message 6: a gap.
	w.write(ws.TextMessage, "a4")
	w = c.attachWebSocket(s, "&received=4&seq=6", "")
	w.write(ws.TextMessage, "m6")
	if f := nextFrame(t, w, "ha"); f != "c4000 sequence gap" {
		t.Fatalf("frame %q where section 9 says c4000 sequence gap", f)
	}
	if _, err := w.next(); err != io.EOF || w.closeCode != 4000 || w.closeText != "sequence gap" {
		t.Errorf("WebSocket close %d %q (%v), section 9 says 4000 sequence gap", w.closeCode, w.closeText, err)
	}
}

// TestOutsideWebSocketFaults checks section 9's faults on a WebSocket:
// each closes the session with the close frame stated, then the WebSocket
// close with the same status and reason.
func TestOutsideWebSocketFaults(t *testing.T) {
	long := strings.Repeat("x", 124)
	for _, tc := range []struct {
		name  string
		typ   int
		frame string
		want  string
	}{
		{"an unknown type", ws.TextMessage, "x", "c4003 malformed frame"},
		{"an empty text message", ws.TextMessage, "", "c4003 malformed frame"},
		{"invalid UTF-8", ws.TextMessage, "m\xff", "c4003 malformed frame"},
		{"invalid base64", ws.TextMessage, "Bab", "c4003 malformed frame"},
		{"invalid UTF-8 in base64", ws.TextMessage, "M/w==", "c4003 malformed frame"},
		{"a close frame with a reason not UTF-8", ws.TextMessage, "c4100 \xff", "c4003 malformed frame"},
		{"a binary message too big", ws.BinaryMessage, strings.Repeat("x", wireMaxMessage+1), "c1009 message too big"},
		{"a text message too big in base64", ws.TextMessage, "M" + b64(strings.Repeat("x", wireMaxMessage+1)), "c1009 message too big"},
		{"a text message too big as b", ws.TextMessage, "b" + strings.Repeat("x", 2*wireMaxMessage), "c1009 message too big"},
		// Malformed however long: no control frame is a message too big.
		{"an a count of 5,000 digits", ws.TextMessage, "a" + strings.Repeat("1", 5000), "c4003 malformed frame"},
		{"h with 5,000 bytes", ws.TextMessage, "h" + strings.Repeat("x", 5000), "c4003 malformed frame"},
		{"an unknown type of 5,000 bytes", ws.TextMessage, "x" + strings.Repeat("x", 5000), "c4003 malformed frame"},
		{"a close reason of 5,000 bytes", ws.TextMessage, "c4100 " + strings.Repeat("x", 5000), "c4003 malformed frame"},
		{"h with a payload", ws.TextMessage, "hx", "c4003 malformed frame"},
		{"an a count with a leading zero", ws.TextMessage, "a01", "c4003 malformed frame"},
		{"an empty a count", ws.TextMessage, "a", "c4003 malformed frame"},
		{"an acknowledgement of unsent messages", ws.TextMessage, "a5", "c4003 bad acknowledgement"},
		{"a close code 1005", ws.TextMessage, "c1005", "c4003 malformed frame"},
		{"a close code 65536", ws.TextMessage, "c65536", "c4003 malformed frame"},
		{"a close reason of 124 bytes", ws.TextMessage, "c4100 " + long, "c4003 malformed frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newOutside(t, nil)
			s := c.negotiate()
			w := c.attachWebSocket(s, "&received=0", "")
			w.write(ws.TextMessage, "mbefore")
			w.write(tc.typ, tc.frame)
			// The echo of the message before the fault comes first
			// (section 9), then the close frame.
			if f := nextFrame(t, w, "ha"); f != "mbefore" {
				t.Errorf("frame %q, section 9 says the answer to the message before the fault comes first", f)
			}
			if f := nextFrame(t, w, "ha"); f != tc.want {
				t.Errorf("frame %q, section 9 says %q", f, tc.want)
			}
			code, _ := strconv.Atoi(tc.want[1:5])
			if _, err := w.next(); err != io.EOF || w.closeCode != code || w.closeText != tc.want[6:] {
				t.Errorf("WebSocket close %d %q (%v), section 9 says %d %q", w.closeCode, w.closeText, err, code, tc.want[6:])
			}
			a := c.refusedWebSocket(s, "&received=1&seq=2", nil)
			wantError(t, "attach after the fault", a, 404, "unknown session")
		})
	}
}

// TestOutsideBadAcknowledgementOnSend: a send whose received counts more
// than the server sent answers 400 and closes the session with 4003
// (section 9).
func TestOutsideBadAcknowledgementOnSend(t *testing.T) {
	for _, tc := range []struct{ name, query, frame string }{
		{"received", "&received=1", ""},
		{"an a frame", "", "a1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newOutside(t, nil)
			s := c.negotiate()
			var frames []string
			if tc.frame != "" {
				frames = append(frames, tc.frame)
			}
			a := c.send(s, tc.query, frames...)
			t.Logf("answer: %v", a)
			if a.status != 400 || !strings.HasPrefix(a.body, "bad request: ") {
				t.Errorf("send acknowledging an unsent message: %v, section 9 says 400", a)
			}
			a = c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil)
			if a.status != 200 || a.body != "25:c4003 bad acknowledgement" {
				t.Errorf("poll after it: %v, section 9 says the session closes with 4003 (bad acknowledgement, as on a WebSocket)", a)
			}
		})
	}
}

// TestOutsideClientClose checks section 6's client close frame on each
// way of sending it.
func TestOutsideClientClose(t *testing.T) {
	t.Run("websocket", func(t *testing.T) {
		c := newOutside(t, nil)
		s := c.negotiate()
		w := c.attachWebSocket(s, "&received=0", "")
		w.write(ws.TextMessage, "c4100 bye")
		if f, err := w.next(); err != io.EOF || w.closeCode != 1000 || w.closeText != "" {
			t.Errorf("after the client's close frame: frame %q (%v), WebSocket close %d %q; section 6 says the WebSocket close 1000 with no reason, no close frame", f, err, w.closeCode, w.closeText)
		}
		wantError(t, "poll after it", c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil), 404, "unknown session")
	})
	t.Run("send", func(t *testing.T) {
		c := newOutside(t, nil)
		s := c.negotiate()
		d := c.attachStreaming(s, "&received=0")
		if a := c.send(s, "", "c1000"); a.status != 204 {
			t.Fatalf("send of a close frame: %v", a)
		}
		// A stream attached at that moment ends without a close frame.
		wantEndWithoutFrames(t, d, "stream after the client's close (section 6)")
		wantError(t, "send after it", c.send(s, "&seq=1", "mx"), 404, "unknown session")
	})
	t.Run("send with a WebSocket attached", func(t *testing.T) {
		c := newOutside(t, nil)
		s := c.negotiate()
		w := c.attachWebSocket(s, "&received=0", "tether.compact")
		if a := c.send(s, "&seq=1", "mundelivered", "c4100 bye"); a.status != 204 {
			t.Fatal(a)
		}
		// The echo may or may not have gone out before the close: the
		// server discards what it has not delivered.
		f, err := w.next()
		if err == nil && f == "mundelivered" {
			f, err = w.next()
		}
		if err != io.EOF || w.closeCode != 1000 || w.closeText != "" {
			t.Errorf("the WebSocket attached at a send's close frame: %q %v, close %d %q; section 6 says closed with 1000 and no reason, no close frame", f, err, w.closeCode, w.closeText)
		}
	})
	t.Run("websocket close without close frame", func(t *testing.T) {
		c := newOutside(t, nil)
		s := c.negotiate()
		w := c.attachWebSocket(s, "&received=0", "")
		w.conn.SetReadDeadline(time.Now().Add(outsideTimeout))
		if err := w.conn.WriteControl(ws.CloseMessage, ws.FormatCloseMessage(4321, "cut"), time.Now().Add(outsideTimeout)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.conn.ReadMessage(); w.closeCode != 4321 {
			t.Errorf("WebSocket close answered %d %q (%v), section 6 says the server echoes the status", w.closeCode, w.closeText, err)
		}
		// The session goes on (a cut).
		if a := c.send(s, "&seq=1", "mstill"); a.status != 204 {
			t.Errorf("send after a WebSocket close: %v, section 6 says the session waits for the next attach", a)
		}
	})
}

// TestOutsideSupersede checks section 3: a new attach supersedes the
// previous connection, of every transport, and the session goes on.
func TestOutsideSupersede(t *testing.T) {
	for _, old := range outsideTransports {
		t.Run(old, func(t *testing.T) {
			c := newOutside(t, nil)
			s := c.negotiate()
			var d outsideDown
			pollDone := make(chan outsideAnswer, 1)
			if old == "longpoll" {
				go func() {
					pollDone <- c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil)
				}()
				// The poll waits up to a heartbeat: supersede it
				// once it is surely attached.
				time.Sleep(200 * time.Millisecond)
			} else {
				d = c.attach(old, s, "&received=0")
			}
			n := c.attachStreaming(s, "&received=0")
			switch old {
			case "websocket":
				w := d.(*wsDown)
				if f, err := w.next(); err != io.EOF || w.closeCode != 4009 || w.closeText != "superseded" {
					t.Errorf("old WebSocket: frame %q (%v), close %d %q; section 3 says the WebSocket close 4009 superseded, no close frame", f, err, w.closeCode, w.closeText)
				}
			case "longpoll":
				a := <-pollDone
				if a.status != 200 || a.body != "" {
					t.Errorf("superseded poll: %v; section 3 says it answers at once with the frames it holds, or with none", a)
				}
			default:
				wantEndWithoutFrames(t, d, "old stream (section 3: it ends as at its byte limit)")
			}
			if a := c.send(s, "&seq=1", "mnew"); a.status != 204 {
				t.Fatal(a)
			}
			if f := nextFrame(t, n, "h"); f != "mnew" {
				t.Errorf("new stream: %q, want the echo", f)
			}
		})
	}
}

// TestOutsideAttachCounts checks section 3's received rules: stale
// attaches answer 409, a gap closes with 4000 resume gap.
func TestOutsideAttachCounts(t *testing.T) {
	for _, v := range outsideVariants {
		name := v.transport
		t.Run(v.String(), func(t *testing.T) {
			c := newOutside(t, nil)
			s := c.negotiate()
			if a := c.send(s, "&seq=1", "m1", "m2", "m3"); a.status != 204 {
				t.Fatal(a)
			}
			// The client acknowledges 2 of the 3 echoes.
			if a := c.send(s, "&received=2"); a.status != 204 {
				t.Fatalf("send acknowledging: %v", a)
			}
			var a outsideAnswer
			if name == "websocket" {
				a = c.refusedWebSocket(s, "&received=1&seq=4", nil)
			} else {
				a = c.request("GET", name+"?"+s.auth()+"&received=1", nil, nil)
			}
			wantError(t, "stale attach", a, 409, "stale attach")
			// received=3 is fine; received=4 is a gap.
			d := c.attachVariant(v, s, "&received=4&seq=4")
			if f := nextFrame(t, d, "h"); f != "c4000 resume gap" {
				t.Errorf("attach ahead: frame %q, section 3 says only c4000 resume gap", f)
			}
			if f, err := d.next(); err != io.EOF {
				t.Errorf("after c4000 resume gap: %q %v", f, err)
			}
			if w, ok := d.(*wsDown); ok && (w.closeCode != 4000 || w.closeText != "resume gap") {
				t.Errorf("WebSocket close %d %q, section 3 says 4000 resume gap", w.closeCode, w.closeText)
			}
			a = c.request("GET", "longpoll?"+s.auth()+"&received=3", nil, nil)
			wantError(t, "attach after the resume gap", a, 404, "unknown session")
		})
	}
	t.Run("longpoll body", func(t *testing.T) {
		c := newOutside(t, nil)
		s := c.negotiate()
		a := c.request("GET", "longpoll?"+s.auth()+"&received=1", nil, nil)
		if a.status != 200 || a.body != "16:c4000 resume gap" {
			t.Errorf("poll ahead: %v, section 3 says 200 and 16:c4000 resume gap", a)
		}
	})
}

// TestOutsideHeartbeats checks section 5.3: an idle poll answers 1:h, a
// stream and a WebSocket send h, and heartbeatMs is clamped.
func TestOutsideHeartbeats(t *testing.T) {
	c := newOutside(t, &tether.Options{HeartbeatInterval: 300 * time.Millisecond})
	s := c.negotiate()
	if s.HeartbeatMs != 300 {
		t.Fatalf("heartbeatMs %d", s.HeartbeatMs)
	}
	// Lower bounds only: a server may answer later, never sooner.
	for _, q := range []string{"", "&heartbeatMs=1", "&heartbeatMs=999999999"} {
		start := time.Now()
		a := c.request("GET", "longpoll?"+s.auth()+"&received=0"+q, nil, nil)
		if a.status != 200 || a.body != "1:h" {
			t.Errorf("idle poll%s: %v, section 5.3 says a batch holding one h", q, a)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("idle poll%s answered after %v; section 5.3 says after heartbeatMs (the negotiated 300, being below 1000)", q, d)
		}
	}
	c2 := newOutside(t, &tether.Options{HeartbeatInterval: 1200 * time.Millisecond})
	s2 := c2.negotiate()
	start := time.Now()
	if a := c2.request("GET", "longpoll?"+s2.auth()+"&received=0&heartbeatMs=1", nil, nil); a.body != "1:h" {
		t.Errorf("idle poll with heartbeatMs=1: %v", a)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("idle poll with heartbeatMs=1 answered after %v; section 5.3 says the value is clamped to 1000", d)
	}
	for _, name := range []string{"sse", "streaming"} {
		d := c.attach(name, s, "&received=0")
		for range 2 {
			if f := nextFrame(t, d, ""); f != "h" {
				t.Errorf("%s: %q, want heartbeats", name, f)
			}
		}
		d.stop()
	}
	w := c.attachWebSocket(s, "&received=0", "")
	if f := nextFrame(t, w, ""); f != "h" {
		t.Errorf("websocket: %q, want a heartbeat", f)
	}
	// A silent client is dropped after 2 x heartbeatMs (and an eighth),
	// never sooner.
	lastWrite := time.Now()
	w.write(ws.TextMessage, "h")
	if f := nextFrame(t, w, ""); f != "h" {
		t.Errorf("websocket: %q, want a heartbeat", f)
	}
	for {
		f, err := w.next()
		if err != nil {
			if w.closeCode != 0 {
				t.Errorf("silent WebSocket ended with close %d %q; section 5.3 says the server drops it", w.closeCode, w.closeText)
			}
			if d := time.Since(lastWrite); d < 600*time.Millisecond {
				t.Errorf("silent WebSocket dropped %v after the client's last frame; section 5.3 says 2 x heartbeatMs (600 ms), never less", d)
			}
			break
		}
		if f != "h" {
			t.Fatalf("frame %q", f)
		}
	}
}

// TestOutsideLongPollBody checks section 4.1: a long poll of many frames
// may come without a Content-Length; read to its end, it holds them all.
func TestOutsideLongPollBody(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	var frames []string
	for i := range 20 {
		frames = append(frames, "m"+strconv.Itoa(i%10)+strings.Repeat("x", 899))
	}
	if a := c.send(s, "&seq=1", frames...); a.status != 204 {
		t.Fatal(a)
	}
	d := c.attach("longpoll", s, "&received=0")
	for i, want := range frames {
		if f := nextFrame(t, d, "h"); f != want {
			t.Fatalf("message %d: %.8q", i+1, f)
		}
	}
	if a := c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil); a.header.Get("Content-Length") != "" || len(a.body) != 20*905 {
		t.Errorf("a poll of 20 messages: Content-Length %q, %d bytes of body", a.header.Get("Content-Length"), len(a.body))
	}
}

// TestOutsideClosedSession checks what every request for a closed session
// answers (sections 3, 6 and 9's order of the checks): closed by the
// client, and by the application once its close frame went out.
func TestOutsideClosedSession(t *testing.T) {
	for _, closer := range []string{"c1000", "mclose 4100 bye"} {
		c := newOutside(t, nil)
		s := c.negotiate()
		if a := c.send(s, "&seq=1", "m1", closer); a.status != 204 {
			t.Fatal(a)
		}
		if closer[0] == 'm' {
			if a := c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil); a.body != "2:m19:c4100 bye" {
				t.Fatalf("poll: %v", a)
			}
		}
		for _, tc := range []struct {
			name, method, endpoint string
			body                   []byte
		}{
			{"an empty send", "POST", "send?" + s.auth(), nil},
			{"a send of a heartbeat", "POST", "send?" + s.auth(), outsideBatch("h")},
			{"a send acknowledging", "POST", "send?" + s.auth() + "&received=1", nil},
			{"a malformed send", "POST", "send?" + s.auth(), []byte("x")},
			{"a send of a message", "POST", "send?" + s.auth() + "&seq=3", outsideBatch("m3")},
			{"a poll", "GET", "longpoll?" + s.auth() + "&received=1", nil},
			{"an sse probe", "GET", "sse?" + s.auth() + "&received=1&probe=1", nil},
			{"a streaming attach", "GET", "streaming?" + s.auth() + "&received=1", nil},
			{"a GET websocket that is no handshake", "GET", "websocket?" + s.auth() + "&received=1", nil},
		} {
			wantError(t, tc.name+" after "+closer, c.request(tc.method, tc.endpoint, nil, tc.body), 404, "unknown session")
		}
		wantError(t, "a WebSocket handshake after "+closer, c.refusedWebSocket(s, "&received=1", nil), 404, "unknown session")
	}
}

// TestOutsideWebSocketAckCadence checks section 5.2: the server
// acknowledges a WebSocket's messages after every 32, and the rest soon
// after the last.
func TestOutsideWebSocketAckCadence(t *testing.T) {
	c := newOutside(t, &tether.Options{HeartbeatInterval: time.Minute})
	s := c.negotiate()
	w := c.attachWebSocket(s, "&received=0", "")
	for range 100 {
		w.write(ws.TextMessage, "m")
	}
	acked, echoes := 0, 0
	for echoes < 100 || acked < 100 {
		f := nextFrame(t, w, "h")
		if f[0] != 'a' {
			echoes++
			continue
		}
		n, err := strconv.Atoi(f[1:])
		if err != nil || n <= acked || n > 100 || n-acked > 32 || n%32 != 0 && n != 100 {
			t.Fatalf("%q after a%d; section 5.2 says one after every 32 client messages, then the rest", f, acked)
		}
		acked = n
	}
}
