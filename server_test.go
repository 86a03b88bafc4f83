package tether_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/transport"
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
	u := "ws" + strings.TrimPrefix(base, "http") + fmt.Sprintf("websocket?session=%s&token=%s&received=0&seq=1", n.Session, n.Token)
	c, _, err := ws.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
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

func TestLongPollEchoRaw(t *testing.T) {
	base := echoServer(t, nil)
	n := negotiate(t, base)
	q := fmt.Sprintf("?session=%s&token=%s", n.Session, n.Token)
	var body []byte
	body = transport.AppendBatchFrame(body, []byte("mhello"))
	body = transport.AppendBatchFrame(body, []byte("bxyz"))
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
		err = transport.ParseBatch(b, 1<<20, func(f transport.Frame) error {
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
