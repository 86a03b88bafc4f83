package conformance_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The wire tests are a client written from PROTOCOL.md alone: raw
// requests with net/http and gorilla/websocket, every answer read as bytes
// and compared with the bytes the document states.

// Limits of the wire server.
const wireMaxMessage = 1 << 10

// wireEnv is a server whose application echoes every message, and closes
// the session when a text message says "close CODE REASON".
type wireEnv struct {
	srv  *tether.Server
	base string // http://127.0.0.1:port/rt/
	addr string
	hc   *http.Client
	ends sync.Map // session id -> the error OnClose was given
}

// The wire server's application: as a tether.Handler reading with Recv
// (wireRecv) or as tether.Callbacks.
const (
	wireCallbacks = false
	wireRecv      = true
)

func newWireEnv(t *testing.T, opts *tether.Options, recv ...bool) *wireEnv {
	e := &wireEnv{}
	var o tether.Options
	if opts != nil {
		o = *opts
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = wireMaxMessage
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = time.Second
	}
	o.Logger = slog.New(slog.DiscardHandler)
	var h tether.Handler = &tether.Callbacks{
		Message: func(s *session.Session, m wire.Message) {
			if cmd, ok := strings.CutPrefix(string(m.Data), "close "); ok && m.Type == wire.Text {
				code, reason, _ := strings.Cut(cmd, " ")
				n, _ := strconv.Atoi(code)
				s.Close(wire.StatusCode(n), reason)
				return
			}
			s.Send(s.Context(), m)
		},
		Close: func(s *session.Session, err error) { e.ends.Store(s.ID(), err) },
	}
	if len(recv) > 0 && recv[0] {
		h = tether.HandlerFunc(h.(*tether.Callbacks).ServeSession)
	}
	e.srv = tether.NewServer(h, &o)
	mux := http.NewServeMux()
	mux.Handle("/rt/", e.srv)
	hs := httptest.NewServer(mux)
	tr := &http.Transport{}
	e.hc = &http.Client{Transport: tr}
	t.Cleanup(func() {
		e.srv.Close()
		hs.Close()
		tr.CloseIdleConnections()
	})
	e.base = hs.URL + "/rt/"
	e.addr = hs.Listener.Addr().String()
	return e
}

// wireSession is a negotiated session.
type wireSession struct {
	Session, Token string
}

func (s wireSession) query() string {
	return "session=" + url.QueryEscape(s.Session) + "&token=" + url.QueryEscape(s.Token)
}

func (e *wireEnv) negotiate(t *testing.T) wireSession {
	t.Helper()
	resp := e.do(t, "POST", "negotiate?v=1", nil, nil)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %s", resp.Status)
	}
	var s wireSession
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request to endpoint (path and query under the prefix).
func (e *wireEnv) do(t *testing.T, method, endpoint string, header http.Header, body []byte) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	r, err := http.NewRequestWithContext(ctx, method, e.base+endpoint, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		r.Header[k] = v
	}
	resp, err := e.hc.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	return resp
}

// exact does a request and returns its status and whole body as bytes:
// "404 unknown session\n".
func (e *wireEnv) exact(t *testing.T, method, endpoint string, header http.Header, body []byte) string {
	t.Helper()
	resp := e.do(t, method, endpoint, header, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// readUntil reads r until what it has read holds want, and returns it.
func readUntil(r io.Reader, want string) (string, error) {
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(want)) {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil && !bytes.Contains(got, []byte(want)) {
			return string(got), err
		}
	}
	return string(got), nil
}

// wireBatch is a send body: frames in batch framing (section 4.1).
func wireBatch(frames ...string) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, strconv.Itoa(len(f))+":"+f...)
	}
	return b
}

// TestAttachAfterCloseFrameIs404 attaches right after the close frame
// arrived on the downstream transports, many times: section 6 says a
// closed session can no longer be attached once its close frame was
// delivered, so the attach answers 404 every time, never the frame again.
func TestAttachAfterCloseFrameIs404(t *testing.T) {
	const tries = 40
	e := newWireEnv(t, nil)
	for _, name := range []string{"sse", "streaming", "longpoll"} {
		t.Run(name, func(t *testing.T) {
			for i := range tries {
				s := e.negotiate(t)
				if got := e.exact(t, "POST", "send?seq=1&"+s.query(), nil, wireBatch("mclose 1000 done")); got != "204 " {
					t.Fatalf("try %d: send: %q", i, got)
				}
				resp := e.do(t, "GET", name+"?received=0&"+s.query(), nil, nil)
				got, err := readUntil(resp.Body, "c1000 done")
				resp.Body.Close()
				if err != nil {
					t.Fatalf("try %d: reading the close frame: %v after %q", i, err, got)
				}
				if got := e.exact(t, "GET", name+"?received=0&"+s.query(), nil, nil); got != "404 unknown session\n" {
					t.Fatalf("try %d: attach after the close frame: %.80q, want 404", i, got)
				}
			}
		})
	}
}

// wsDial attaches a WebSocket with the query after the session's.
func (e *wireEnv) wsDial(t *testing.T, s wireSession, query string) *ws.Conn {
	t.Helper()
	conn, resp, err := ws.DefaultDialer.Dial("ws://"+e.addr+"/rt/websocket?"+s.query()+"&"+query, nil)
	if err != nil {
		t.Fatalf("WebSocket attach: %v (%s)", err, wsRefusal(resp))
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	return conn
}

// wsRefusal returns the HTTP answer to a refused WebSocket handshake, as
// exact() does.
func wsRefusal(resp *http.Response) string {
	if resp == nil {
		return "no answer"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// wsAttachRefused makes a WebSocket attach that must be refused and returns
// the HTTP answer.
func (e *wireEnv) wsAttachRefused(t *testing.T, s wireSession, query string) string {
	t.Helper()
	conn, resp, err := ws.DefaultDialer.Dial("ws://"+e.addr+"/rt/websocket?"+s.query()+"&"+query, nil)
	if err == nil {
		conn.Close()
		return "101: the WebSocket opened"
	}
	return wsRefusal(resp)
}

// wsTranscript reads conn until the WebSocket closes and returns what
// came: "text:PAYLOAD" or "binary:N bytes" per message, then
// "close CODE REASON" for the WebSocket close, joined by " | ".
func wsTranscript(conn *ws.Conn) string {
	var got []string
	for {
		typ, p, err := conn.ReadMessage()
		if err != nil {
			var ce *ws.CloseError
			if errors.As(err, &ce) {
				return strings.Join(append(got, fmt.Sprintf("close %d %s", ce.Code, ce.Text)), " | ")
			}
			return strings.Join(append(got, "read: "+err.Error()), " | ")
		}
		if typ == ws.TextMessage {
			if string(p) == "h" || p[0] == 'a' {
				continue // heartbeats and acknowledgements come when they are due
			}
			got = append(got, "text:"+string(p))
		} else {
			got = append(got, fmt.Sprintf("binary:%d bytes", len(p)))
		}
	}
}

// TestWebSocketOversizeMessage sends a message, then one over
// maxMessageBytes, many times, with the application reading by callback and
// by Recv. Every time, the echo of the first comes, then the close frame
// c1009, then the WebSocket close 1009 (PROTOCOL.md section 9), and the
// next attach answers 404 before the upgrade.
func TestWebSocketOversizeMessage(t *testing.T) {
	const tries = 25
	for _, recv := range []bool{wireCallbacks, wireRecv} {
		t.Run(fmt.Sprintf("recv=%v", recv), func(t *testing.T) {
			e := newWireEnv(t, nil, recv)
			for i := range tries {
				s := e.negotiate(t)
				conn := e.wsDial(t, s, "received=0&seq=1")
				conn.WriteMessage(ws.TextMessage, []byte("mhello"))
				conn.WriteMessage(ws.BinaryMessage, make([]byte, wireMaxMessage+1))
				want := "text:mhello | text:c1009 message too big | close 1009 message too big"
				if got := wsTranscript(conn); got != want {
					t.Fatalf("try %d:\n got %s\nwant %s", i, got, want)
				}
				conn.Close()
				if got := e.wsAttachRefused(t, s, "received=1&seq=2"); got != "404 unknown session\n" {
					t.Fatalf("try %d: the next attach: %q, want 404", i, got)
				}
			}
		})
	}
}

// TestMessageSizeLimitCountsDecodedBytes sends messages of exactly
// maxMessageBytes and one more, in every form, on the WebSocket and on
// send: the limit counts the decoded payload, so the base64 forms of a
// message within it are accepted on both, and one over is refused on both
// (PROTOCOL.md sections 2 and 8).
func TestMessageSizeLimitCountsDecodedBytes(t *testing.T) {
	e := newWireEnv(t, nil)
	full := bytes.Repeat([]byte{0xfe}, wireMaxMessage)
	text := strings.Repeat("é", wireMaxMessage/2) // 2 bytes each
	b64 := base64.StdEncoding.EncodeToString
	within := []struct{ frame, echo string }{
		{"B" + b64(full), fmt.Sprintf("binary:%d bytes", wireMaxMessage)},
		{"M" + b64([]byte(text)), "text:m" + text},
		{"m" + text, "text:m" + text},
	}
	over := []string{"B" + b64(append(full, 0)), "M" + b64([]byte(text+"x")), "m" + text + "x"}
	for _, f := range within {
		s := e.negotiate(t)
		conn := e.wsDial(t, s, "received=0&seq=1")
		conn.WriteMessage(ws.TextMessage, []byte(f.frame))
		conn.WriteMessage(ws.TextMessage, []byte("mclose 1000 done"))
		if got, want := wsTranscript(conn), f.echo+" | text:c1000 done | close 1000 done"; got != want {
			t.Errorf("WebSocket %.1s frame of %d bytes:\n got %.100s\nwant %.100s", f.frame, wireMaxMessage, got, want)
		}
		s = e.negotiate(t)
		if got := e.exact(t, "POST", "send?seq=1&"+s.query(), nil, wireBatch(f.frame)); got != "204 " {
			t.Errorf("send %.1s frame of %d bytes: %q, want 204", f.frame, wireMaxMessage, got)
		}
	}
	for _, f := range over {
		s := e.negotiate(t)
		conn := e.wsDial(t, s, "received=0&seq=1")
		conn.WriteMessage(ws.TextMessage, []byte(f))
		if got, want := wsTranscript(conn), "text:c1009 message too big | close 1009 message too big"; got != want {
			t.Errorf("WebSocket %.1s frame of %d bytes:\n got %s\nwant %s", f, wireMaxMessage+1, got, want)
		}
		s = e.negotiate(t)
		if got := e.exact(t, "POST", "send?seq=1&"+s.query(), nil, wireBatch(f)); got != "413 message too big\n" {
			t.Errorf("send %.1s frame of %d bytes: %q, want 413 message too big", f, wireMaxMessage+1, got)
		}
	}
}
