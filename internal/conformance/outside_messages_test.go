package conformance_test

import (
	"io"
	"strconv"
	"strings"
	"testing"

	ws "github.com/gorilla/websocket"
)

// outsideTransports are the four transports of section 1.
var outsideTransports = []string{"websocket", "sse", "streaming", "longpoll"}

// outsideUp sends client messages on a transport: on the WebSocket
// itself, on the others through send (section 5.2).
type outsideUp struct {
	c    *outsideClient
	s    outsideSession
	w    *wsDown // nil on an HTTP transport
	next int     // the number of the next client message
}

// frames sends frames; on an HTTP transport in one send request that must
// answer 204.
func (u *outsideUp) frames(frames ...string) {
	u.c.t.Helper()
	messages := 0
	for _, f := range frames {
		if strings.ContainsRune("mMbB", rune(f[0])) {
			messages++
		}
	}
	if u.w == nil {
		if a := u.c.send(u.s, "&seq="+strconv.Itoa(u.next), frames...); a.status != 204 {
			u.c.t.Fatalf("send: %v", a)
		}
	} else {
		for _, f := range frames {
			if f[0] == 'b' {
				u.w.write(ws.BinaryMessage, f[1:])
			} else {
				u.w.write(ws.TextMessage, f)
			}
		}
	}
	u.next += messages
}

func b64(s string) string { return base64Std(s) }

// outsideVariant is a transport with or without compact framing
// (sections 4.2 and 4.6).
type outsideVariant struct {
	transport string
	compact   bool
}

func (v outsideVariant) String() string {
	if v.compact {
		return v.transport + "/compact"
	}
	return v.transport
}

// outsideVariants are the four transports in both framings.
var outsideVariants = []outsideVariant{
	{"websocket", false}, {"websocket", true}, {"sse", false}, {"sse", true},
	{"streaming", false}, {"streaming", true}, {"longpoll", false}, {"longpoll", true},
}

// attachVariant attaches v: compact framing asked for by the subprotocol
// on a WebSocket, by compact=1 on the others.
func (c *outsideClient) attachVariant(v outsideVariant, s outsideSession, query string) outsideDown {
	c.t.Helper()
	switch {
	case !v.compact:
		return c.attach(v.transport, s, query)
	case v.transport == "websocket":
		w := c.attachWebSocket(s, query, "tether.compact")
		if !w.compact {
			c.t.Fatal("the server did not select tether.compact (section 4.2)")
		}
		return w
	}
	return c.attach(v.transport, s, query+"&compact=1")
}

// TestOutsideMessages sends text and binary messages of every kind, in
// every form a client may use, on every transport, and checks the echoes:
// their bytes, the form the server chose (sections 4.2 to 4.4), the sizes
// of section 8, resume (5.1), and the server's close frame (6).
func TestOutsideMessages(t *testing.T) {
	var all256 strings.Builder
	for i := range 256 {
		all256.WriteByte(byte(i))
	}
	maxText := strings.Repeat("é", wireMaxMessage/2)
	maxBinary := strings.Repeat("\xff", wireMaxMessage)
	sent := []outsideMessage{
		{data: "hello"},
		{data: ""},
		{binary: true, data: ""},
		{data: "héllo wörld, 日本語, 🎉 \u2028 \x00"},
		{data: "two\nlines\r\nand a CR\r"},
		{data: "record\x1eseparator"},
		{binary: true, data: all256.String()},
		{binary: true, data: "\n\r\x1e:"},
		{data: maxText},
		{binary: true, data: maxBinary},
		{data: "sent as M"},
		{binary: true, data: "sent as B\x00\xff"},
		{data: maxText}, // as M: its base64 is over maxMessageBytes, the message is not (section 8)
	}
	// The form each is sent in (section 4: a receiver accepts all four on
	// every transport).
	wire := func(i int, m outsideMessage) string {
		switch {
		case i == 10 || i == 12:
			return "M" + b64(m.data)
		case i == 11:
			return "B" + b64(m.data)
		case m.binary:
			return "b" + m.data
		}
		return "m" + m.data
	}
	for _, v := range outsideVariants {
		name := v.transport
		t.Run(v.String(), func(t *testing.T) {
			c := newOutside(t, nil)
			s := c.negotiate()
			up := &outsideUp{c: c, s: s, next: 1}
			d := c.attachVariant(v, s, "&received=0")
			if w, ok := d.(*wsDown); ok {
				up.w = w
			}
			var frames []string
			for i, m := range sent {
				frames = append(frames, wire(i, m))
			}
			up.frames(frames...)
			for i, want := range sent {
				f := nextFrame(t, d, "ha")
				got, ok := decodeMessage(t, f)
				if !ok || got != want {
					t.Fatalf("echo %d: frame %.60q, want %.60q (binary %v)", i+1, f, want.data, want.binary)
				}
				wantForm := byte('m')
				switch {
				case want.binary && name == "sse":
					wantForm = 'B'
				case want.binary:
					wantForm = 'b'
				case name == "sse" && strings.ContainsAny(want.data, "\r\n"):
					wantForm = 'M'
				case name == "sse" && v.compact && strings.Contains(want.data, "\x1e"):
					wantForm = 'M' // section 4.6
				}
				if f[0] != wantForm {
					t.Errorf("echo %d %.30q sent as %c; section 4 says %c on %s", i+1, want.data, f[0], wantForm, name)
				}
			}
			n := len(sent)

			// Resume (5.1): a new attach with received=n-3 carries the
			// last three again, first.
			d.stop()
			d = c.attachVariant(v, s, "&received="+strconv.Itoa(n-3)+"&seq="+strconv.Itoa(up.next))
			if w, ok := d.(*wsDown); ok {
				up.w = w
			}
			for i := n - 3; i < n; i++ {
				f := nextFrame(t, d, "ha")
				if got, _ := decodeMessage(t, f); got != sent[i] {
					t.Fatalf("replayed message %d: %.60q, want %.60q", i+1, f, sent[i].data)
				}
			}

			// The application closes with a reason of 140 bytes: it is
			// cut to 123 at a character boundary (section 4), so 122.
			reason := strings.Repeat("é", 70)
			up.frames("mclose 4100 " + reason)
			want := "c4100 " + reason[:122]
			if f := nextFrame(t, d, "ha"); f != want {
				t.Errorf("close frame %q, section 4 says %q", f, want)
			}
			if f, err := d.next(); err != io.EOF {
				t.Errorf("after the close frame: %q, %v; section 6 says the connection ends", f, err)
			}
			if w, ok := d.(*wsDown); ok && (w.closeCode != 4100 || w.closeText != reason[:122]) {
				t.Errorf("WebSocket close %d %q, section 6 says 4100 and the frame's reason", w.closeCode, w.closeText)
			}
			for _, ep := range outsideTransports {
				query := "&received=" + strconv.Itoa(n)
				var a outsideAnswer
				if ep == "websocket" {
					a = c.refusedWebSocket(s, query, nil)
				} else {
					a = c.request("GET", ep+"?"+s.auth()+query, nil, nil)
				}
				wantError(t, ep+" attach after the close frame", a, 404, "unknown session")
			}
		})
	}
}

// TestOutsideMessageTooBig sends a message one byte over maxMessageBytes
// (section 8): send answers 413 message too big and the session closes
// with 1009; on a WebSocket the close frame c1009 message too big comes,
// then the WebSocket close 1009 (section 9).
func TestOutsideMessageTooBig(t *testing.T) {
	over := []string{
		"m" + strings.Repeat("x", wireMaxMessage+1),
		"b" + strings.Repeat("x", wireMaxMessage+1),
		"M" + b64(strings.Repeat("x", wireMaxMessage+1)),
		"B" + b64(strings.Repeat("x", wireMaxMessage+1)),
	}
	for _, name := range outsideTransports {
		for _, f := range over {
			t.Run(name+"/"+f[:1], func(t *testing.T) {
				c := newOutside(t, nil)
				s := c.negotiate()
				d := c.attach(name, s, "&received=0")
				if w, ok := d.(*wsDown); ok {
					if f[0] == 'b' {
						w.write(ws.BinaryMessage, f[1:])
					} else {
						w.write(ws.TextMessage, f)
					}
				} else {
					wantError(t, "send of a message too big", c.send(s, "&seq=1", "mbefore", f), 413, "message too big")
				}
				if w, ok := d.(*wsDown); ok {
					if got := nextFrame(t, d, "ha"); got != "c1009 message too big" {
						t.Errorf("close frame %q, section 9 says c1009 message too big", got)
					}
					if _, err := d.next(); err != io.EOF || w.closeCode != 1009 || w.closeText != "message too big" {
						t.Errorf("WebSocket close %d %q (%v), section 9 says 1009 message too big", w.closeCode, w.closeText, err)
					}
					return
				}
				// Section 8: the session is closed with 1009. Whether
				// "mbefore" was accepted, section 9 does not say of a
				// 413; read what comes up to the close frame.
				for {
					got := nextFrame(t, d, "h")
					if got[0] == 'c' {
						if got != "c1009 message too big" {
							t.Errorf("close frame %q, section 8 says the session is closed with 1009", got)
						}
						break
					}
					t.Logf("before the close frame: %q", got)
				}
			})
		}
	}
}
