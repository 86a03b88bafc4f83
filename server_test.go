package tether_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type negotiated struct {
	Session, Token string
	Transports     []string
	HeartbeatMs    int64
}

// echoServer starts the conformance suite's echo server and returns its
// prefix URL.
func echoServer(t *testing.T, opts *tether.Options) string {
	t.Helper()
	_, base := (&conformance.Env{}).Server(t, conformance.Echo, opts)
	return base
}

func negotiate(t *testing.T, base string) negotiated {
	t.Helper()
	resp, err := http.Post(base+"negotiate?v=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("negotiate: %s", resp.Status)
	}
	var n negotiated
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWebSocketEchoRaw(t *testing.T) {
	base := echoServer(t, nil)
	n := negotiate(t, base)
	c := dialWebSocket(t, base, n, 0, 1)
	defer c.Close()
	c.WriteMessage(ws.TextMessage, []byte("mhello"))
	c.WriteMessage(ws.BinaryMessage, []byte{0, 1, 2})
	// readMessage skips acknowledgements and heartbeats.
	readMessage := func() (int, []byte, error) {
		for {
			typ, p, err := c.ReadMessage()
			if err != nil || typ == ws.BinaryMessage || (len(p) > 0 && p[0] == 'm') {
				return typ, p, err
			}
		}
	}
	typ, p, err := readMessage()
	if err != nil || typ != ws.TextMessage || string(p) != "mhello" {
		t.Fatalf("got %v %q %v", typ, p, err)
	}
	typ, p, err = readMessage()
	if err != nil || typ != ws.BinaryMessage || !bytes.Equal(p, []byte{0, 1, 2}) {
		t.Fatalf("got %v %q %v", typ, p, err)
	}
	c.WriteMessage(ws.TextMessage, []byte("c1000 bye"))
	for {
		_, _, err := c.ReadMessage()
		if err != nil {
			break
		}
	}
}

// dialWebSocket attaches a raw WebSocket to session n, with the
// client's received count and the number of its next message; reads fail
// after 10 s.
func dialWebSocket(t *testing.T, base string, n negotiated, received, seq uint64) *ws.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + fmt.Sprintf("websocket?session=%s&token=%s&received=%d&seq=%d", n.Session, n.Token, received, seq)
	c, _, err := ws.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestLongPollEchoRaw(t *testing.T) {
	base := echoServer(t, nil)
	n := negotiate(t, base)
	q := fmt.Sprintf("?session=%s&token=%s", n.Session, n.Token)
	var body []byte
	body = wire.AppendBatchFrame(body, []byte("mhello"))
	body = wire.AppendBatchFrame(body, []byte("bxyz"))
	resp, err := http.Post(base+"send"+q+"&seq=1", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("send: %s", resp.Status)
	}
	var got []string
	received := 0
	for len(got) < 2 {
		resp, err := http.Get(base + "longpoll" + q + fmt.Sprintf("&received=%d", received))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("poll: %s %q", resp.Status, b)
		}
		err = wire.ParseBatch(b, 1<<20, func(f wire.Frame) error {
			if f.IsMessage() {
				got = append(got, f.Message.Type.String()+":"+string(f.Message.Data))
				received++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got[0] != "text:hello" || got[1] != "binary:xyz" {
		t.Fatalf("got %q", got)
	}
}

func TestServesJavaScriptClient(t *testing.T) {
	base := echoServer(t, nil)
	for _, name := range []string{"tether.js", "tether.mjs"} {
		resp, err := http.Get(base + name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(b) == 0 || resp.Header.Get("ETag") == "" {
			t.Fatalf("GET %s: %s, %d bytes, ETag %q", name, resp.Status, len(b), resp.Header.Get("ETag"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
			t.Fatalf("GET %s: Content-Type %q", name, ct)
		}
	}
}

// do sends a request with an optional Tether-Token header and returns its
// status and body.
func do(t *testing.T, method, u, token string, body []byte) (int, string) {
	t.Helper()
	r, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		r.Header.Set(httpx.TokenHeader, token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTokenHeader: the token may travel in the Tether-Token header instead
// of the query; a request with the header is looked up with it alone.
func TestTokenHeader(t *testing.T) {
	base := echoServer(t, nil)
	n := negotiate(t, base)
	if code, body := do(t, "POST", base+"send?seq=1&session="+n.Session, n.Token, wire.AppendBatchFrame(nil, []byte("mhi"))); code != 204 {
		t.Fatalf("send with the token in the header: %d %q, want 204", code, body)
	}
	if code, body := do(t, "GET", base+"longpoll?received=0&session="+n.Session, n.Token, nil); code != 200 || body != "3:mhi" {
		t.Errorf("poll with the token in the header: %d %q, want 200 \"3:mhi\"", code, body)
	}
	wrong := strings.Repeat("A", len(n.Token))
	if code, body := do(t, "GET", base+"longpoll?received=1&session="+n.Session+"&token="+n.Token, wrong, nil); code != 404 || body != "unknown session\n" {
		t.Errorf("poll with a wrong token in the header and the right one in the query: %d %q, want 404", code, body)
	}
	if code, _ := do(t, "POST", base+"send?session="+n.Session, n.Token, wire.AppendBatchFrame(nil, []byte("c1000"))); code != 204 {
		t.Errorf("close with the token in the header: %d, want 204", code)
	}
}

// TestLogsHoldNoToken: whatever a client sends, even its token where the
// session id belongs, the server's logs (Debug included) never hold the
// token.
func TestLogsHoldNoToken(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := echoServer(t, &tether.Options{Logger: logger, MaxMessageBytes: 1 << 10, MaxBodyBytes: 2 << 10})
	n := negotiate(t, base)
	q := "?session=" + n.Session + "&token=" + n.Token
	swapped := "?session=" + n.Token + "&token=" + n.Session
	for _, r := range []struct {
		method, url string
		body        []byte
		want        int
	}{
		{"GET", base + "longpoll" + swapped + "&received=0", nil, 404},
		{"POST", base + "send" + swapped + "&seq=1", wire.AppendBatchFrame(nil, []byte("mx")), 404},
		{"POST", base + "send" + q + "&seq=1", []byte("x:y"), 400},
		{"POST", base + "send" + q + "&seq=1", bytes.Repeat([]byte("x"), 4<<10), 413},
		{"POST", base + "send" + q, wire.AppendBatchFrame(nil, []byte("a99")), 400},
	} {
		if code, body := do(t, r.method, r.url, "", r.body); code != r.want {
			t.Errorf("%s %s: %d %q, want %d", r.method, r.url, code, body, r.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "tether: unknown session") || !strings.Contains(logs.String(), "tether: malformed send") {
		t.Errorf("the logs lack the requests' entries:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), n.Token) {
		t.Errorf("the logs hold the session token %s:\n%s", n.Token, logs.String())
	}
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
