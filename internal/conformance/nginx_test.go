package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/internal/nginxtest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// readmeNginxConfig returns the nginx configuration README.md recommends,
// so that this test keeps the README true.
func readmeNginxConfig(t *testing.T) string {
	t.Helper()
	nginxtest.Require(t)
	conf, err := nginxtest.ReadmeConfig("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestBehindNginx runs every offered transport through a real nginx
// configured as README.md recommends: each works, streams included, and a
// browser's same-origin negotiate passes the origin check through it.
func TestBehindNginx(t *testing.T) {
	conf := readmeNginxConfig(t)
	for _, name := range conformance.OfferedTransports(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			e := &conformance.Env{Transport: name}
			_, base := e.Server(t, conformance.BurstEcho, &tether.Options{SlowConsumer: session.SlowConsumerBlock})
			backend := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/rt/")
			ngx := nginxtest.StartT(t, conf, backend)
			front := ngx.Addr
			c := e.Dial(t, ctx, "http://"+front+"/rt/", &client.Options{StreamStartTimeout: 2 * time.Second})
			exchange(t, ctx, c, 1000)

			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+front+"/rt/negotiate?v=1", nil)
			req.Header.Set("Origin", "http://"+front)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var n struct{ Session, Token string }
			err = json.NewDecoder(resp.Body).Decode(&n)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("same-origin negotiate through nginx: %s (%v), want 200 (nginx must pass the Host with its port)", resp.Status, err)
			}
			checkAccessLog(t, ctx, front, ngx.AccessLog, n.Session, n.Token)
		})
	}
}

// checkAccessLog ends the session with a send request through nginx, which
// carries the token in its query, and checks that the access log README's
// configuration writes has a line for it, without the token, and no query
// anywhere.
func checkAccessLog(t *testing.T, ctx context.Context, front, accessLog, id, token string) {
	t.Helper()
	u := "http://" + front + "/rt/send?session=" + url.QueryEscape(id) + "&token=" + url.QueryEscape(token)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("5:c1000"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("send through nginx: %s, want 204", resp.Status)
	}
	// nginx writes a request's log line after it has sent the response, so
	// the line may land a moment after the 204 reached this client.
	var log []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		log, err = os.ReadFile(accessLog)
		if err == nil && bytes.Contains(log, []byte(`"POST /rt/send HTTP/1.1" 204`)) {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("README's nginx configuration wrote no access log: %v", err)
			}
			t.Fatalf("the access log has no line for the send request:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if bytes.Contains(log, []byte(token)) || bytes.Contains(log, []byte("token=")) || bytes.Contains(log, []byte("?")) {
		t.Errorf("the access log holds a query, or the session token %q:\n%s", token, log)
	}
}

// TestBehindNginxWithoutUpgrades: an nginx that strips WebSocket
// upgrades and buffers upstream reads, ignoring X-Accel-Buffering. nginx
// still passes each read on to the client, so the streams work through it:
// the client must leave WebSocket and carry every message on what it finds.
func TestBehindNginxWithoutUpgrades(t *testing.T) {
	conf := nginxVariant(t, map[string]string{
		"proxy_buffering off;":                             "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;",
		"proxy_set_header Upgrade $http_upgrade;":          "",
		"proxy_set_header Connection $connection_upgrade;": "",
	})
	c := dialBehind(t, conf)
	if got := c.Transport(); got == "websocket" {
		t.Fatalf("Transport() behind an nginx without upgrades = %q", got)
	}
	exchange(t, c.Context(), c, 500)
}

// TestBehindCompressingNginx: an nginx that buffers upstream reads
// (ignoring X-Accel-Buffering) and compresses every response (gzip on for
// every type, a common blanket setting) holds a stream back entirely, its
// headers included: the compressor waits for a full buffer and no flush
// reaches it. The client must find the streams buffered, settle on long
// polling, and carry every message.
func TestBehindCompressingNginx(t *testing.T) {
	conf := nginxVariant(t, map[string]string{
		"proxy_buffering off;":                             "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering; gzip on; gzip_types *; gzip_min_length 1;",
		"proxy_set_header Upgrade $http_upgrade;":          "",
		"proxy_set_header Connection $connection_upgrade;": "",
	})
	c := dialBehind(t, conf)
	if got := c.Transport(); got != "longpoll" {
		t.Fatalf("Transport() behind a compressing nginx = %q, want longpoll", got)
	}
	exchange(t, c.Context(), c, 500)
}

// nginxVariant returns README's nginx configuration with replacements.
func nginxVariant(t *testing.T, replace map[string]string) string {
	t.Helper()
	conf, err := nginxtest.Variant(readmeNginxConfig(t), replace)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// dialBehind starts a server behind nginx configured with conf and dials it
// in automatic mode, with a short stream start timeout.
func dialBehind(t *testing.T, conf string) *client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	_, base := (&conformance.Env{}).Server(t, conformance.BurstEcho, &tether.Options{SlowConsumer: session.SlowConsumerBlock})
	backend := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/rt/")
	front := nginxtest.StartT(t, conf, backend).Addr
	start := time.Now()
	c, err := client.Dial(ctx, "http://"+front+"/rt/", &client.Options{StreamStartTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(wire.StatusNormalClosure, "") })
	t.Logf("on %s after %s", c.Transport(), time.Since(start).Round(time.Millisecond))
	return c
}

// exchange checks an echo of text and binary, then a burst of n numbered
// messages from the server, exactly.
func exchange(t *testing.T, ctx context.Context, c *client.Session, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	want := []wire.Message{
		{Type: wire.Text, Data: []byte("héllo\nthrough nginx")},
		{Type: wire.Binary, Data: []byte{0, 1, 2, 0xff, '\r', '\n'}},
	}
	for _, m := range want {
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range want {
		got, err := c.Recv(ctx)
		if err != nil || got.Type != w.Type || !bytes.Equal(got.Data, w.Data) {
			t.Fatalf("echo %d = %v %q, %v; want %v %q", i, got.Type, got.Data, err, w.Type, w.Data)
		}
	}
	if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(fmt.Sprintf("burst %d", n))}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("burst: Recv after %d of %d: %v", i, n, err)
		}
		if want := fmt.Sprintf("d%d", i); string(m.Data) != want {
			t.Fatalf("burst: got %q, want %q", m.Data, want)
		}
	}
}
