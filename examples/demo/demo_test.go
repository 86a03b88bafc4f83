package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// testTimeout bounds every blocking call a test makes.
const testTimeout = 20 * time.Second

var transports = []string{"websocket", "sse", "streaming", "longpoll"}

// startDemo serves the demo's routes behind the meter on a loopback port.
func startDemo(t *testing.T) string {
	t.Helper()
	m := newMeter()
	rt := newServer(m)
	hs := httptest.NewUnstartedServer(routes(rt, m))
	hs.Listener = m.listen(hs.Listener)
	hs.Config.ConnContext = m.connContext
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		rt.Shutdown(ctx)
		hs.Close()
	})
	return hs.URL
}

func dial(t *testing.T, ctx context.Context, base, transport string) *client.Session {
	t.Helper()
	c, err := client.Dial(ctx, base+"/rt/", &client.Options{
		Transports: []string{transport},
		MinDelay:   10 * time.Millisecond,
		MaxDelay:   100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Dial over %s: %v", transport, err)
	}
	t.Cleanup(func() { c.Close(wire.StatusNormalClosure, "") })
	return c
}

func send(t *testing.T, ctx context.Context, c *client.Session, text string) {
	t.Helper()
	if err := c.Send(ctx, textMsg(text)); err != nil {
		t.Fatalf("Send(%q): %v", text, err)
	}
}

func recv(t *testing.T, ctx context.Context, c *client.Session) string {
	t.Helper()
	m, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return string(m.Data)
}

func getJSON(t *testing.T, ctx context.Context, method, url string, v any) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

func TestEchoFloodAndStats(t *testing.T) {
	base := startDemo(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c := dial(t, ctx, base, tr)
			send(t, ctx, c, "ping")
			if got := recv(t, ctx, c); got != "ping" {
				t.Fatalf("echo = %q, want %q", got, "ping")
			}
			var before Stats
			getJSON(t, ctx, "GET", base+"/demo/stats?session="+c.ID(), &before)
			send(t, ctx, c, "flood 100 64")
			for i := range 100 {
				if got := recv(t, ctx, c); len(got) != 64 || got[0] != 'f' {
					t.Fatalf("flood message %d = %q, want 64 bytes starting with f", i+1, got)
				}
			}
			if got := recv(t, ctx, c); got != "flood done 100" {
				t.Fatalf("after the flood: %q, want %q", got, "flood done 100")
			}
			var after Stats
			getJSON(t, ctx, "GET", base+"/demo/stats?session="+c.ID(), &after)
			// Each message carries its 64 bytes, and the framing around it.
			if d := after.BytesOut - before.BytesOut; d < 100*64 {
				t.Errorf("bytes out during the flood = %d, want at least %d", d, 100*64)
			}
			if before.BytesIn <= 0 || before.Requests < 2 {
				t.Errorf("stats before the flood = %+v: want bytes in and at least 2 requests (negotiate, attach)", before)
			}
		})
	}
}

func TestStatsAndCutUnknownSession(t *testing.T) {
	base := startDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var v any
	if s := getJSON(t, ctx, "GET", base+"/demo/stats?session=nope", &v); s != http.StatusNotFound {
		t.Errorf("stats of an unknown session: status %d, want 404", s)
	}
	if s := getJSON(t, ctx, "POST", base+"/demo/cut?session=nope", &v); s != http.StatusNotFound {
		t.Errorf("cut of an unknown session: status %d, want 404", s)
	}
	send := map[string]string{"flood 0 64": "flood bad request", "flood 1 0": "flood bad request"}
	c := dial(t, ctx, base, "websocket")
	for cmd, want := range send {
		if err := c.Send(ctx, textMsg(cmd)); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, ctx, c); got != want {
			t.Errorf("%q answered %q, want %q", cmd, got, want)
		}
	}
}

// TestCutLosesNothing streams both ways, cuts the session's connections
// through the meter, and checks that every message arrived once, in order.
func TestCutLosesNothing(t *testing.T) {
	base := startDemo(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c := dial(t, ctx, base, tr)
			send(t, ctx, c, "stream start")
			got, up := 0, 0
			next := func() {
				got++
				if m := recv(t, ctx, c); m != fmt.Sprintf("s %d", got) {
					t.Fatalf("stream message = %q, want %q", m, fmt.Sprintf("s %d", got))
				}
				up++
				send(t, ctx, c, fmt.Sprintf("u %d", up))
			}
			for range 20 {
				next()
			}
			var res struct{ Cut int }
			if s := getJSON(t, ctx, "POST", base+"/demo/cut?session="+c.ID(), &res); s != http.StatusOK {
				t.Fatalf("cut: status %d", s)
			}
			for range 40 {
				next()
			}
			send(t, ctx, c, "stream stop")
			for {
				m := recv(t, ctx, c)
				if strings.HasPrefix(m, "s ") {
					got++
					if m != fmt.Sprintf("s %d", got) {
						t.Fatalf("stream message = %q, want %q", m, fmt.Sprintf("s %d", got))
					}
					continue
				}
				want := fmt.Sprintf("stream end %d %d 0", got, up)
				if m != want {
					t.Fatalf("end of the stream: %q, want %q", m, want)
				}
				break
			}
		})
	}
}

// TestCutBreaksConnection checks that a cut closes the TCP connection the
// session's WebSocket runs on.
func TestCutBreaksConnection(t *testing.T) {
	m := newMeter()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ml := m.listen(ln)
	defer ml.Close()
	o := new(counts)
	m.sessions["s1"] = o
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ml.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc := <-accepted
	mc := sc.(*meteredConn)
	mc.claim(o)
	if _, err := sc.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if n, ok := m.cut("s1"); n != 1 || !ok {
		t.Fatalf("cut = %d, %v; want 1, true", n, ok)
	}
	cc.SetReadDeadline(time.Now().Add(testTimeout))
	b, err := io.ReadAll(cc)
	if string(b) != "hello" || err != nil {
		t.Errorf("client read %q, %v; want %q then EOF", b, err, "hello")
	}
	if st, _ := m.stats("s1"); st.BytesOut != 5 || st.Requests != 1 {
		t.Errorf("stats = %+v, want 5 bytes out and 1 request", st)
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", func(url string) { urls <- url }) }()
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	for path, want := range map[string]string{
		"":              "Run comparison",
		"demo.js":       "from '/rt/tether.mjs'",
		"charts.js":     "export const histogram",
		"demo.css":      ".cards",
		"rt/tether.mjs": "Tether",
	} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET /%s: %d, body without %q", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after cancel")
	}
}
