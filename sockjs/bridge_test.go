package sockjs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/sockjs"
	"github.com/tetherkit/tether/wire"
)

// The bridge's behaviour table, run on each SockJS transport. It follows
// internal/conformance's table where SockJS can follow: that table drives
// the Tether client and the Tether wire protocol (negotiate, tokens, send
// batches, resume, binary frames), none of which a SockJS client has, so
// its rows are restated here for what SockJS carries.
var behaviours = []struct {
	name string
	run  func(t *testing.T, e *env)
}{
	{"EchoText", echoText},
	{"BinaryAsBase64", binaryAsBase64},
	{"OrderUnderConcurrentSenders", orderUnderConcurrentSenders},
	{"MessageOverSizeLimit", messageOverSizeLimit},
	{"CloseFromServer", closeFromServer},
	{"CloseFromClient", closeFromClient},
	{"Heartbeats", heartbeats},
	{"HandlerSeesSockJSSession", handlerSeesSockJSSession},
	{"AuthorizeRefuses", authorizeRefuses},
	{"Shutdown", shutdown},
}

// transports are SockJS's transports the bridge serves, by the last
// element of their path.
var transports = []string{"websocket", "xhr", "xhr_streaming"}

func TestBridge(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			for _, b := range behaviours {
				t.Run(b.name, func(t *testing.T) { b.run(t, &env{transport: tr}) })
			}
		})
	}
}

// env is what a behaviour gets: the SockJS transport under test.
type env struct {
	transport string
}

// testTimeout bounds every behaviour.
const testTimeout = 30 * time.Second

func (e *env) context(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// server starts a Tether server with the bridge mounted at /sockjs and
// returns the server and the bridge's URL.
func (e *env) server(t *testing.T, h tether.Handler, opts *tether.Options, bopts *sockjs.Options) (*tether.Server, string) {
	t.Helper()
	srv := tether.NewServer(h, opts)
	if bopts == nil {
		bopts = &sockjs.Options{}
	}
	if bopts.DisconnectDelay == 0 {
		// An HTTP client between two polls is still there: however slow
		// the machine, it has the whole of the test to come back. (A
		// shorter delay ends the session in a late gap between polls, and
		// sockjs-go answers the next poll with a new session of the same
		// id.)
		bopts.DisconnectDelay = testTimeout
	}
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	mux.Handle("/sockjs/", sockjs.New(srv, "/sockjs", bopts))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	return srv, hs.URL + "/sockjs"
}

// dial opens a SockJS session on the transport under test and reads its
// open frame.
func (e *env) dial(t *testing.T, ctx context.Context, base string, header http.Header) *sjsClient {
	t.Helper()
	var c *sjsClient
	var err error
	if e.transport == "websocket" {
		c, err = dialWebSocket(ctx, base, header)
	} else {
		c, err = dialXHR(ctx, base, e.transport, header)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", e.transport, err)
	}
	t.Cleanup(c.drop)
	if f, err := c.next(ctx); err != nil || f.kind != 'o' {
		t.Fatalf("first frame = %q, %v; want the open frame", f.kind, err)
	}
	return c
}

func mustSend(t *testing.T, ctx context.Context, c *sjsClient, msgs ...string) {
	t.Helper()
	if err := c.send(ctx, msgs...); err != nil {
		t.Fatalf("send %q: %v", msgs, err)
	}
}

func mustRecv(t *testing.T, ctx context.Context, c *sjsClient, want string) {
	t.Helper()
	got, err := c.recv(ctx)
	if err != nil || got != want {
		t.Fatalf("recv = %q, %v; want %q", got, err, want)
	}
}

func wantClosed(t *testing.T, ctx context.Context, c *sjsClient, code int, reason string) {
	t.Helper()
	for {
		m, err := c.recv(ctx)
		var cl closed
		if errors.As(err, &cl) {
			if cl.code != code || cl.reason != reason {
				t.Fatalf("close frame %d %q, want %d %q", cl.code, cl.reason, code, reason)
			}
			return
		}
		if err != nil {
			t.Fatalf("recv = %v, want close frame %d %q", err, code, reason)
		}
		t.Fatalf("recv = %q, want close frame %d %q", m, code, reason)
	}
}

// echo sends every message back.
var echo = tether.HandlerFunc(func(s *session.Session) {
	for {
		m, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		if s.Send(s.Context(), m) != nil {
			return
		}
	}
})

// echoUntil is echo, which then hands the error that ended Recv to result.
func echoUntil(result chan<- error) tether.Handler {
	return tether.HandlerFunc(func(s *session.Session) {
		for {
			m, err := s.Recv(s.Context())
			if err != nil {
				result <- err
				return
			}
			s.Send(s.Context(), m)
		}
	})
}

func echoText(t *testing.T, e *env) {
	ctx := e.context(t)
	_, base := e.server(t, echo, nil, nil)
	c := e.dial(t, ctx, base, nil)
	want := []string{"hello", "héllo ✓ 😀", "", "line\nbreak\r\nand\rreturn", `"quoted" \ back`,
		"</script><script>", "\u2028\u2029", "\x00\x01\x7f", strings.Repeat("x", 10_000)}
	mustSend(t, ctx, c, want[:3]...) // several in one SockJS frame
	for _, m := range want[3:] {
		mustSend(t, ctx, c, m)
	}
	for _, w := range want {
		mustRecv(t, ctx, c, w)
	}
}

// binaryAsBase64: a binary message reaches a SockJS client as its base64.
func binaryAsBase64(t *testing.T, e *env) {
	ctx := e.context(t)
	_, base := e.server(t, tether.HandlerFunc(func(s *session.Session) {
		if _, err := s.Recv(s.Context()); err != nil {
			return
		}
		s.Send(s.Context(), wire.Message{Type: wire.Binary, Data: []byte{0, 1, 2, 0xff}})
		s.Send(s.Context(), wire.Message{Type: wire.Binary, Data: []byte{}})
		s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte("AAEC/w==")})
		<-s.Context().Done()
	}), nil, nil)
	c := e.dial(t, ctx, base, nil)
	mustSend(t, ctx, c, "go")
	mustRecv(t, ctx, c, "AAEC/w==")
	mustRecv(t, ctx, c, "")
	mustRecv(t, ctx, c, "AAEC/w==") // text that looks like base64 stays as it is
}

func orderUnderConcurrentSenders(t *testing.T, e *env) {
	const senders, each = 4, 100
	ctx := e.context(t)
	// The server's side sends concurrently too: one goroutine per sender.
	_, base := e.server(t, tether.HandlerFunc(func(s *session.Session) {
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			m, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			var g, i int
			fmt.Sscanf(string(m.Data), "%d:%d", &g, &i)
			if i == 0 {
				wg.Go(func() {
					for j := range each {
						if s.Send(s.Context(), wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "s%d:%d", g, j)}) != nil {
							return
						}
					}
				})
			}
			if s.Send(s.Context(), m) != nil {
				return
			}
		}
	}), nil, nil)
	c := e.dial(t, ctx, base, nil)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if err := c.send(ctx, fmt.Sprintf("%d:%d", g, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	next := map[string]int{}
	for range 2 * senders * each {
		m, err := c.recv(ctx)
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		key, num, ok := strings.Cut(m, ":")
		var i int
		if _, err := fmt.Sscanf(num, "%d", &i); !ok || err != nil {
			t.Fatalf("unexpected message %q", m)
		}
		if i != next[key] {
			t.Fatalf("sender %s: got message %d, want %d", key, i, next[key])
		}
		next[key]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("send: %v", err)
	}
}

// messageOverSizeLimit: a message at the limit goes through; one over it
// closes the session with 1009.
func messageOverSizeLimit(t *testing.T, e *env) {
	const limit = 1024
	ctx := e.context(t)
	result := make(chan error, 1)
	_, base := e.server(t, echoUntil(result), &tether.Options{MaxMessageBytes: limit}, nil)
	c := e.dial(t, ctx, base, nil)
	at := strings.Repeat("é", limit/2)
	mustSend(t, ctx, c, at)
	mustRecv(t, ctx, c, at)
	mustSend(t, ctx, c, strings.Repeat("x", limit+1))
	wantClosed(t, ctx, c, 1009, httpx.MsgMessageTooBig)
	wantServerClosed(t, ctx, result, wire.StatusMessageTooBig)
}

// wantServerClosed waits for the error that ended the handler's Recv
// (echoUntil), which must be a close with code.
func wantServerClosed(t *testing.T, ctx context.Context, result <-chan error, code wire.StatusCode) {
	t.Helper()
	select {
	case err := <-result:
		if wire.CloseStatus(err) != code {
			t.Fatalf("server Recv = %v, want close %d", err, code)
		}
	case <-ctx.Done():
		t.Fatal("the handler never saw the close")
	}
}

func closeFromServer(t *testing.T, e *env) {
	ctx := e.context(t)
	_, base := e.server(t, tether.HandlerFunc(func(s *session.Session) {
		m, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		for i := range 20 {
			s.Send(s.Context(), wire.Message{Type: wire.Text, Data: fmt.Appendf(m.Data, " %d", i)})
		}
		s.Close(4100, "bye now")
	}), nil, nil)
	c := e.dial(t, ctx, base, nil)
	mustSend(t, ctx, c, "last")
	for i := range 20 {
		mustRecv(t, ctx, c, fmt.Sprintf("last %d", i))
	}
	wantClosed(t, ctx, c, 4100, "bye now")
}

// closeFromClient: the client goes away (sockjs-client's close() sends
// nothing either): the handler gets what was sent, then 1006.
func closeFromClient(t *testing.T, e *env) {
	ctx := e.context(t)
	got := make(chan error, 1)
	var msgs []string
	_, base := e.server(t, tether.HandlerFunc(func(s *session.Session) {
		for {
			m, err := s.Recv(s.Context())
			if err != nil {
				got <- err
				return
			}
			msgs = append(msgs, string(m.Data))
		}
	}), nil, &sockjs.Options{
		// The 1006 comes at once when the dropped client had a request
		// open; when it was between two polls, after this delay (the
		// default).
		DisconnectDelay: 5 * time.Second,
	})
	c := e.dial(t, ctx, base, nil)
	mustSend(t, ctx, c, "one", "two")
	mustSend(t, ctx, c, "before close")
	c.drop()
	select {
	case err := <-got:
		if wire.CloseStatus(err) != wire.StatusAbnormalClosure {
			t.Fatalf("server Recv = %v, want close 1006", err)
		}
		if strings.Join(msgs, ",") != "one,two,before close" {
			t.Fatalf("server received %q, want every message sent before the close", msgs)
		}
	case <-ctx.Done():
		t.Fatal("the server never saw the close")
	}
}

// heartbeats: an idle connection carries sockjs-go's heartbeats and stays
// usable.
func heartbeats(t *testing.T, e *env) {
	ctx := e.context(t)
	_, base := e.server(t, echo, nil, &sockjs.Options{HeartbeatInterval: 20 * time.Millisecond})
	c := e.dial(t, ctx, base, nil)
	for c.heard['h'] < 3 {
		f, err := c.next(ctx)
		if err != nil {
			t.Fatalf("waiting for heartbeats: %v", err)
		}
		if f.kind != 'h' {
			t.Fatalf("frame %q on an idle session, want heartbeats", f.kind)
		}
	}
	mustSend(t, ctx, c, "awake")
	mustRecv(t, ctx, c, "awake")
}

// handlerSeesSockJSSession: the application's one Handler gets a session
// whose transport is "sockjs", authorized by its Authorize hook.
func handlerSeesSockJSSession(t *testing.T, e *env) {
	ctx := e.context(t)
	_, base := e.server(t, tether.HandlerFunc(func(s *session.Session) {
		if _, err := s.Recv(s.Context()); err != nil {
			return
		}
		s.Send(s.Context(), wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "%s %v", s.Transport(), s.Request().Auth)})
		<-s.Context().Done()
	}), &tether.Options{Authorize: func(r *http.Request) (any, error) {
		return r.Header.Get("X-User"), nil
	}}, nil)
	c := e.dial(t, ctx, base, http.Header{"X-User": {"alice"}})
	mustSend(t, ctx, c, "who")
	mustRecv(t, ctx, c, sockjs.Name+" alice")
}

// authorizeRefuses: a refusal of the Authorize hook closes the SockJS
// session with 1008 and the hook's message; the Handler never runs.
func authorizeRefuses(t *testing.T, e *env) {
	ctx := e.context(t)
	srv, base := e.server(t, tether.HandlerFunc(func(s *session.Session) {
		t.Error("the Handler ran for a refused session")
	}), &tether.Options{Authorize: func(r *http.Request) (any, error) {
		return nil, &tether.AuthError{Status: http.StatusForbidden, Message: "no entry"}
	}}, nil)
	c := e.dial(t, ctx, base, nil)
	wantClosed(t, ctx, c, 1008, "no entry")
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("Sessions() = %d after a refusal, want 0", n)
	}
}

// shutdown: Server.Shutdown closes SockJS sessions with 1001 after what
// was sent, and refuses new ones with 1001.
func shutdown(t *testing.T, e *env) {
	ctx := e.context(t)
	srv, base := e.server(t, echo, nil, nil)
	c := e.dial(t, ctx, base, nil)
	mustSend(t, ctx, c, "before")
	mustRecv(t, ctx, c, "before")
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	wantClosed(t, ctx, c, 1001, "server shutting down")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c2 := e.dial(t, ctx, base, nil)
	wantClosed(t, ctx, c2, 1001, "server shutting down")
}

// TestOrigins: every SockJS endpoint applies the server's origin policy.
func TestOrigins(t *testing.T) {
	ctx := (&env{}).context(t)
	_, base := (&env{}).server(t, echo, &tether.Options{AllowedOrigins: []string{"http://app.example"}}, nil)
	evil := http.Header{"Origin": {"http://evil.example"}}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/info"},
		{http.MethodOptions, "/info"},
		{http.MethodPost, "/000/abc/xhr"},
		{http.MethodPost, "/000/abc/xhr_streaming"},
		{http.MethodGet, "/000/abc/eventsource"},
		{http.MethodPost, "/000/abc/xhr_send"},
	} {
		status, body, _ := do(t, ctx, tc.method, base+tc.path, evil, "")
		if status != http.StatusForbidden || body != httpx.MsgOriginNotAllowed {
			t.Errorf("%s %s from another origin: %d %q, want 403 %q", tc.method, tc.path, status, body, httpx.MsgOriginNotAllowed)
		}
	}
	if _, err := dialWebSocket(ctx, base, evil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("WebSocket from another origin: %v, want 403", err)
	}
	if _, err := dialXHR(ctx, base, "xhr", evil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("xhr from another origin: %v, want 403", err)
	}

	// A listed origin gets CORS headers and a working session.
	app := http.Header{"Origin": {"http://app.example"}}
	status, _, h := do(t, ctx, http.MethodGet, base+"/info", app, "")
	if status != http.StatusOK || h.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Errorf("info from a listed origin: %d, Access-Control-Allow-Origin %q", status, h.Get("Access-Control-Allow-Origin"))
	}
	for _, tr := range []string{"websocket", "xhr"} {
		e := &env{transport: tr}
		c := e.dial(t, ctx, base, app)
		mustSend(t, ctx, c, "hi")
		mustRecv(t, ctx, c, "hi")
	}
}

// TestEndpoints: the iframe, htmlfile and JSONP transports are not served;
// xhr_send bodies are bounded and checked whole.
func TestEndpoints(t *testing.T) {
	e := &env{transport: "xhr"}
	ctx := e.context(t)
	_, base := e.server(t, echo, nil, &sockjs.Options{MaxBodyBytes: 1024})
	for _, p := range []string{"/iframe.html", "/iframe-1.1.5.html", "/000/abc/htmlfile?c=x", "/000/abc/jsonp?c=x", "/000/abc/jsonp_send", "/000/abc/nope", "/a/b"} {
		if status, _, _ := do(t, ctx, http.MethodGet, base+p, nil, ""); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, status)
		}
	}
	if status, body, _ := do(t, ctx, http.MethodGet, base+"/", nil, ""); status != http.StatusOK || body != "Welcome to SockJS!" {
		t.Errorf("GET /: %d %q", status, body)
	}

	c := e.dial(t, ctx, base, nil)
	// Find the session's URL through a send that works.
	mustSend(t, ctx, c, "first")
	mustRecv(t, ctx, c, "first")
	big := `["` + strings.Repeat("x", 2000) + `"]`
	if err := c.sendFn(ctx, []byte(big)); err == nil || !strings.Contains(err.Error(), "413") {
		t.Errorf("xhr_send over MaxBodyBytes: %v, want 413", err)
	}
	if err := c.sendFn(ctx, []byte(`["ok", 1]`)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("xhr_send of a bad array: %v, want 400", err)
	}
	// Neither delivered anything, and the session goes on.
	mustSend(t, ctx, c, "second")
	mustRecv(t, ctx, c, "second")
}

// TestUnsentBodies: a request announcing a body and sending none of it,
// or a byte of it, holds its connection no longer than ReadTimeout on
// xhr_send (then 408), and not at all elsewhere (answered, then the
// connection closed); the session goes on.
func TestUnsentBodies(t *testing.T) {
	e := &env{transport: "xhr"}
	ctx := e.context(t)
	_, base := e.server(t, echo, nil, &sockjs.Options{ReadTimeout: time.Second})
	c := e.dial(t, ctx, base, nil)
	mustSend(t, ctx, c, "first")
	mustRecv(t, ctx, c, "first")
	addr := strings.TrimPrefix(base, "http://")
	addr = addr[:strings.Index(addr, "/")]
	path := strings.TrimPrefix(c.url, "http://"+addr)
	for _, r := range []struct{ head, body, want string }{
		{"POST " + path + "/xhr_send", "", "408 request timeout; connection closed"},
		{"POST " + path + "/xhr_send", `["`, "408 request timeout; connection closed"},
		{"GET /sockjs/info", "", "200; connection closed"},
		{"POST /sockjs/000/abc/nope", "", "404 not found; connection closed"},
		{"POST /sockjs/000/unsentbody/xhr", "", "200 o; connection closed"},
	} {
		if got := unsentBody(t, addr, r.head, r.body); got != r.want {
			t.Errorf("%s announcing 100 bytes, sending %q: %s, want %s", r.head, r.body, got, r.want)
		}
	}
	mustSend(t, ctx, c, "second")
	mustRecv(t, ctx, c, "second")
}

// unsentBody sends head with a Content-Length of 100 and body, then
// nothing more, and returns the answer's status, the first line of its
// body when it fits 64 bytes, and "; connection closed" when the server
// then closes the connection.
func unsentBody(t *testing.T, addr, head, body string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, head+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "no answer: " + err.Error()
	}
	b, _ := io.ReadAll(resp.Body)
	got := fmt.Sprint(resp.StatusCode)
	if line, _, _ := strings.Cut(string(b), "\n"); len(b) <= 64 && line != "" {
		got += " " + line
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return got + fmt.Sprintf("; connection not closed (%v)", err)
	}
	return got + "; connection closed"
}

// TestWebSocketMessageLimit: a WebSocket message from a client over
// MaxBodyBytes (sockjs-go would decode it whole into memory) ends the
// session with 1009 as it arrives, whether it comes in one frame or in
// many fragments, and the server's live heap does not grow with it.
func TestWebSocketMessageLimit(t *testing.T) {
	const (
		limit = 64 << 10
		sent  = 32 << 20 // what the client tries to send
	)
	for _, c := range []struct {
		name     string
		fragment int // bytes per frame; 0: one frame
	}{{"one frame", 0}, {"fragments", 4 << 10}} {
		t.Run(c.name, func(t *testing.T) {
			e := &env{transport: "websocket"}
			ctx := e.context(t)
			result := make(chan error, 1)
			_, base := e.server(t, echoUntil(result), nil, &sockjs.Options{MaxBodyBytes: limit})
			u := "ws" + strings.TrimPrefix(sessionPath(base), "http") + "/websocket"
			conn, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetWriteDeadline(time.Now().Add(testTimeout))
			// At the limit: echoed.
			at := `["` + strings.Repeat("x", limit-4) + `"]`
			if err := conn.WriteMessage(websocket.TextMessage, []byte(at)); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(testTimeout))
			for {
				_, p, err := conn.ReadMessage()
				if err != nil {
					t.Fatalf("reading the echo of a message at the limit: %v", err)
				}
				if f, err := parseFrame(string(p)); err == nil && f.kind == 'a' {
					break
				}
			}
			before := liveHeap()
			// Over it: written until the server cuts the connection.
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			frame := []byte(`["`)
			if c.fragment == 0 {
				frame = append(frame, bytes.Repeat([]byte("x"), sent)...)
			}
			w, err := conn.NextWriter(websocket.TextMessage)
			if err == nil {
				_, err = w.Write(frame)
			}
			for n := 0; err == nil && c.fragment > 0 && n < sent; n += len(chunk) {
				_, err = w.Write(chunk) // gorilla writes a frame per 4 KiB
			}
			if err == nil {
				err = w.Close()
			}
			frame = nil
			growth := liveHeap() - before
			wantServerClosed(t, ctx, result, wire.StatusMessageTooBig)
			t.Logf("%s: writing %d bytes in one message: %v; live heap %+d bytes", c.name, sent, err, growth)
			if growth > 4*limit+1<<20 {
				t.Errorf("live heap grew by %d bytes, want at most %d", growth, 4*limit+1<<20)
			}
		})
	}
}

// TestConcurrentSends sends many xhr_send requests at once, each with a
// body of MaxBodyBytes, to a SockJS session whose application does not
// read: sockjs-go holds each request until the session takes its messages,
// whatever becomes of its client, so they take turns, each reading its body
// once it has the turn, and the newest supersedes the one waiting before it
// (503 try again): the server holds the body of one at most, not of each.
func TestConcurrentSends(t *testing.T) {
	const (
		body  = 256 << 10 // MaxBodyBytes
		sends = 64
	)
	e := &env{transport: "xhr"}
	ctx := e.context(t)
	sessions := make(chan *session.Session, 1)
	h := tether.HandlerFunc(func(s *session.Session) {
		sessions <- s
		<-s.Context().Done()
	})
	_, base := e.server(t, h, &tether.Options{MaxQueuedBytes: 1 << 20}, &sockjs.Options{MaxBodyBytes: body})
	c := e.dial(t, ctx, base, nil)
	s := <-sessions
	msg := `"` + strings.Repeat("x", 60<<10) + `"`
	full := []byte("[" + strings.Repeat(msg+",", 3) + msg + "]")
	for s.Received()+4 <= (1<<20)/(60<<10+session.MessageOverhead) {
		mustSend(t, ctx, c, strings.Repeat("x", 60<<10))
	}
	before := liveHeap()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan string, sends)
	for range sends {
		go func() {
			r, err := http.NewRequestWithContext(rctx, http.MethodPost, c.url+"/xhr_send", bytes.NewReader(full))
			if err != nil {
				answers <- err.Error()
				return
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				// Answered and closed before its body was sent,
				// the client may not read the answer.
				if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
					answers <- "closed while sending its body"
				} else {
					answers <- err.Error()
				}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answers <- strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, b))
		}()
	}
	// All but the one that has the turn and the newest are superseded.
	got := map[string]int{}
	for range sends - 2 {
		select {
		case a := <-answers:
			got[a]++
		case <-ctx.Done():
			t.Fatalf("answers: %v, want %d", got, sends-2)
		}
	}
	growth := liveHeap() - before
	t.Logf("%d xhr_sends of %d bytes at once to a session whose queue is full: live heap %+d bytes; answers %v", sends, len(full), growth, got)
	// The first may find room for its messages.
	if got["204"] > 1 || got["204"]+got["503 try again"]+got["closed while sending its body"] != sends-2 {
		t.Errorf("answers %v, want 503 try again (or the connection closed) for %d, 204 for one at most", got, sends-2)
	}
	// Each connection, the server's and the client's, counts too.
	if limit := int64(4*body + sends*64<<10); growth > limit {
		t.Errorf("live heap grew by %d bytes, want at most %d (4 x MaxBodyBytes, and 64 KiB per connection): the server holds the body of every waiting xhr_send", growth, limit)
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func do(t *testing.T, ctx context.Context, method, u string, header http.Header, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}
