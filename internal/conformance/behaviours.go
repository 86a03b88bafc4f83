package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Table is every behaviour a transport must have.
var Table = []Behaviour{
	{"EchoTextAndBinary", echoTextAndBinary},
	{"OrderUnderConcurrentSenders", orderUnderConcurrentSenders},
	{"MessageAtSizeLimit", messageAtSizeLimit},
	{"MessageOverSizeLimit", messageOverSizeLimit},
	{"CloseFromServer", closeFromServer},
	{"CloseFromClient", closeFromClient},
	{"HeartbeatsKeepIdleConnectionAlive", heartbeatsKeepIdleConnectionAlive},
	{"ResumeAfterCutMidBurst", resumeAfterCutMidBurst},
	{"WrongToken", wrongToken},
	{"UnknownSession", unknownSession},
	{"OversizePOST", oversizePOST},
	{"CrossOriginRefused", crossOriginRefused},
	{"TopicPublish", topicPublish},
	{"TopicResume", topicResume},
	{"TopicBadInput", topicBadInput},
}

func text(s string) wire.Message   { return wire.Message{Type: wire.Text, Data: []byte(s)} }
func binary(b []byte) wire.Message { return wire.Message{Type: wire.Binary, Data: b} }

func echoTextAndBinary(t *testing.T, e *Env) {
	ctx := e.Context(t)
	_, base := e.Server(t, Echo, nil)
	c := e.Dial(t, ctx, base, nil)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	want := []wire.Message{
		text("hello"), text("héllo ✓ 😀"), text(""), text("line\nbreak\r\nand\rreturn"),
		binary(all), binary([]byte{}), binary([]byte("\n\r:0")),
	}
	for _, m := range want {
		if err := c.Send(ctx, m); err != nil {
			t.Fatalf("Send(%v %q): %v", m.Type, m.Data, err)
		}
	}
	for i, w := range want {
		got, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv #%d: %v", i, err)
		}
		if got.Type != w.Type || !bytes.Equal(got.Data, w.Data) {
			t.Fatalf("Recv #%d = %v %q, want %v %q", i, got.Type, got.Data, w.Type, w.Data)
		}
	}
}

func orderUnderConcurrentSenders(t *testing.T, e *Env) {
	const senders, each = 4, 250
	ctx := e.Context(t)
	_, base := e.Server(t, Echo, nil)
	c := e.Dial(t, ctx, base, nil)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if err := c.Send(ctx, text(fmt.Sprintf("%d:%d", g, i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		var g, i int
		if _, err := fmt.Sscanf(string(m.Data), "%d:%d", &g, &i); err != nil || g < 0 || g >= senders {
			t.Fatalf("unexpected message %q", m.Data)
		}
		if i != next[g] {
			t.Fatalf("sender %d: got message %d, want %d", g, i, next[g])
		}
		next[g]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Send: %v", err)
	}
}

const smallLimit = 1024

func messageAtSizeLimit(t *testing.T, e *Env) {
	ctx := e.Context(t)
	_, base := e.Server(t, Echo, &tether.Options{MaxMessageBytes: smallLimit})
	c := e.Dial(t, ctx, base, nil)
	for _, m := range []wire.Message{binary(bytes.Repeat([]byte{0xfe}, smallLimit)), text(strings.Repeat("é", smallLimit/2))} {
		if err := c.Send(ctx, m); err != nil {
			t.Fatalf("Send(%d bytes): %v", len(m.Data), err)
		}
		got, err := c.Recv(ctx)
		if err != nil || !bytes.Equal(got.Data, m.Data) {
			t.Fatalf("Recv = %d bytes, %v; want the %d bytes sent", len(got.Data), err, len(m.Data))
		}
	}
}

// messageOverSizeLimit: the client refuses to send an oversized message and
// its session goes on; a message over the limit that reaches the server
// anyway gets the documented answer.
func messageOverSizeLimit(t *testing.T, e *Env) {
	ctx := e.Context(t)
	_, base := e.Server(t, Echo, &tether.Options{MaxMessageBytes: smallLimit})
	c := e.Dial(t, ctx, base, nil)
	if err := c.Send(ctx, binary(make([]byte, smallLimit+1))); err == nil {
		t.Fatalf("Send(%d bytes) = nil, want an error", smallLimit+1)
	}
	if err := c.Send(ctx, text("still here")); err != nil {
		t.Fatalf("Send after refusal: %v", err)
	}
	if m, err := c.Recv(ctx); err != nil || string(m.Data) != "still here" {
		t.Fatalf("Recv = %q, %v", m.Data, err)
	}

	// A raw upload of an oversized message: 413 and the session closes
	// with 1009.
	n := negotiate(t, base, "")
	body := wire.AppendBatchFrame(nil, append([]byte{'b'}, make([]byte, smallLimit+1)...))
	status, msg := post(t, base+"send?"+n.query()+"&seq=1", body)
	if status != http.StatusRequestEntityTooLarge || msg != httpx.MsgMessageTooBig {
		t.Fatalf("oversized message: %d %q, want 413 %q", status, msg, httpx.MsgMessageTooBig)
	}
}

func closeFromServer(t *testing.T, e *Env) {
	ctx := e.Context(t)
	_, base := e.Server(t, tether.HandlerFunc(func(s *session.Session) {
		m, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		s.Send(s.Context(), m)
		s.Close(4100, "bye now")
	}), nil)
	c := e.Dial(t, ctx, base, nil)
	c.Send(ctx, text("last"))
	if m, err := c.Recv(ctx); err != nil || string(m.Data) != "last" {
		t.Fatalf("Recv = %q, %v; want the message sent before the close", m.Data, err)
	}
	_, err := c.Recv(ctx)
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce.Code != 4100 || ce.Reason != "bye now" {
		t.Fatalf("Recv after close = %v, want CloseError 4100 %q", err, "bye now")
	}
}

func closeFromClient(t *testing.T, e *Env) {
	ctx := e.Context(t)
	got := make(chan error, 1)
	_, base := e.Server(t, tether.HandlerFunc(func(s *session.Session) {
		var err error
		for err == nil {
			_, err = s.Recv(s.Context())
		}
		got <- err
	}), nil)
	c := e.Dial(t, ctx, base, nil)
	c.Send(ctx, text("before close"))
	if err := c.Close(4101, "see you"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-got:
		var ce wire.CloseError
		if !errors.As(err, &ce) || ce.Code != 4101 || ce.Reason != "see you" {
			t.Fatalf("server Recv = %v, want CloseError 4101 %q", err, "see you")
		}
	case <-ctx.Done():
		t.Fatal("the server never saw the close")
	}
}

func wrongToken(t *testing.T, e *Env) {
	_, base := e.Server(t, Echo, nil)
	n := negotiate(t, base, "")
	n.Token = strings.Repeat("A", len(n.Token))
	for _, u := range []string{base + e.Transport + "?" + n.query() + "&received=0", base + "send?" + n.query() + "&seq=1"} {
		status, msg := request(t, u)
		if status != http.StatusNotFound || msg != httpx.MsgUnknownSession {
			t.Errorf("%s: %d %q, want 404 %q", u, status, msg, httpx.MsgUnknownSession)
		}
	}
}

func unknownSession(t *testing.T, e *Env) {
	_, base := e.Server(t, Echo, nil)
	n := negotiate(t, base, "")
	n.Session = "AAAAAAAAAAAAAAAAAAAAAA"
	for _, u := range []string{base + e.Transport + "?" + n.query() + "&received=0", base + "send?" + n.query() + "&seq=1"} {
		status, msg := request(t, u)
		if status != http.StatusNotFound || msg != httpx.MsgUnknownSession {
			t.Errorf("%s: %d %q, want 404 %q", u, status, msg, httpx.MsgUnknownSession)
		}
	}
}

// oversizePOST: a send body over the limit is refused with 413 and the
// session goes on.
func oversizePOST(t *testing.T, e *Env) {
	ctx := e.Context(t)
	const limit = 8 << 10
	_, base := e.Server(t, Echo, &tether.Options{MaxMessageBytes: 1024, MaxBodyBytes: limit})
	c := e.Dial(t, ctx, base, nil)
	status, msg := post(t, base+"send?session="+url.QueryEscape(c.ID())+"&token=x&seq=1", make([]byte, 100))
	if status != http.StatusNotFound {
		t.Fatalf("send with a wrong token: %d %q, want 404", status, msg)
	}
	n := negotiate(t, base, "")
	status, msg = post(t, base+"send?"+n.query()+"&seq=1", bytes.Repeat([]byte("5:mabcd"), limit/7+1))
	if status != http.StatusRequestEntityTooLarge || msg != httpx.MsgBodyTooBig {
		t.Fatalf("oversize body: %d %q, want 413 %q", status, msg, httpx.MsgBodyTooBig)
	}
	body := wire.AppendBatchFrame(nil, []byte("mok"))
	if status, msg = post(t, base+"send?"+n.query()+"&seq=1", body); status != http.StatusNoContent {
		t.Fatalf("send after the refusal: %d %q, want 204", status, msg)
	}
	c.Send(ctx, text("unaffected"))
	if m, err := c.Recv(ctx); err != nil || string(m.Data) != "unaffected" {
		t.Fatalf("Recv = %q, %v", m.Data, err)
	}
}

func crossOriginRefused(t *testing.T, e *Env) {
	_, base := e.Server(t, Echo, nil)
	req, _ := http.NewRequest(http.MethodPost, base+"negotiate?v=1", nil)
	req.Header.Set("Origin", "http://evil.example")
	if status, msg := do(t, req); status != http.StatusForbidden || msg != httpx.MsgOriginNotAllowed {
		t.Fatalf("cross-origin negotiate: %d %q, want 403 %q", status, msg, httpx.MsgOriginNotAllowed)
	}
	n := negotiate(t, base, "")
	for _, u := range []string{base + e.Transport + "?" + n.query() + "&received=0", base + "send?" + n.query() + "&seq=1"} {
		method := http.MethodGet
		if strings.Contains(u, "/send?") {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, u, nil)
		req.Header.Set("Origin", "http://evil.example")
		if status, msg := do(t, req); status != http.StatusForbidden || msg != httpx.MsgOriginNotAllowed {
			t.Errorf("cross-origin %s %s: %d %q, want 403", method, u, status, msg)
		}
	}
	// The server's own origin and listed origins are allowed.
	req, _ = http.NewRequest(http.MethodPost, base+"negotiate?v=1", nil)
	req.Header.Set("Origin", strings.TrimSuffix(strings.TrimSuffix(base, "/rt/"), "/"))
	if status, msg := do(t, req); status != http.StatusOK {
		t.Fatalf("same-origin negotiate: %d %q, want 200", status, msg)
	}
}

func request(t *testing.T, u string) (int, string) {
	t.Helper()
	method := http.MethodGet
	if strings.Contains(u, "/send?") {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func post(t *testing.T, u string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	ctx := (&Env{}).Context(t)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}
