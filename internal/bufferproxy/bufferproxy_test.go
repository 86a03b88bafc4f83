package bufferproxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/internal/bufferproxy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bound is the longest any single step of a test may take before it is
// reported as hung. It bounds the tests; it is never a pass criterion.
const bound = 10 * time.Second

// quiet is how long a test watches for bytes that a correct proxy never
// lets through. A slow machine can only make such a check pass vacuously,
// never fail.
const quiet = 100 * time.Millisecond

// streamer is a target that writes parts, flushing after each, and then
// waits for release before writing the last part and ending the response.
type streamer struct {
	parts   []string
	last    string
	flushed chan struct{} // closed once every part is flushed
	release chan struct{}
}

func newStreamer(last string, parts ...string) *streamer {
	return &streamer{parts: parts, last: last, flushed: make(chan struct{}), release: make(chan struct{})}
}

func (s *streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Target", "streamer")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	for _, p := range s.parts {
		io.WriteString(w, p)
		rc.Flush()
	}
	close(s.flushed)
	select {
	case <-s.release:
		io.WriteString(w, s.last)
	case <-r.Context().Done():
	}
}

func newTarget(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newProxy(t *testing.T, target string, opts *bufferproxy.Options) *bufferproxy.Proxy {
	t.Helper()
	p, err := bufferproxy.New(target, opts)
	if err != nil {
		t.Fatalf("New(%q) error: %v", target, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: bound}
}

// get starts a GET and returns the response, or fails the test.
func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// expectHeld fails the test if a byte of body arrives within quiet. It
// returns a function that reads the rest of the body, the byte its probe
// is waiting for included.
func expectHeld(t *testing.T, body io.Reader) func() ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		b := make([]byte, 1)
		n, err := body.Read(b)
		got <- result{b[:n], err}
	}()
	select {
	case r := <-got:
		t.Fatalf("body bytes %q (error %v) reached the client while the target was still streaming", r.b, r.err)
	case <-time.After(quiet):
	}
	return func() ([]byte, error) {
		r := <-got
		if r.err != nil && !errors.Is(r.err, io.EOF) {
			return r.b, r.err
		}
		rest, err := io.ReadAll(body)
		return append(r.b, rest...), err
	}
}

func TestPassThrough(t *testing.T) {
	target := newTarget(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+string(body))
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "short answer")
	}))
	p := newProxy(t, target.URL, nil)
	c := newClient(t)
	res, err := c.Post(p.URL()+"/rt/send?seq=1", "application/octet-stream", strings.NewReader("6:mhello"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusTeapot || string(body) != "short answer" || res.Header.Get("X-Seen") != "POST /rt/send?seq=1 6:mhello" {
		t.Errorf("POST through proxy = %d %q, X-Seen %q; want 418 %q, X-Seen %q",
			res.StatusCode, body, res.Header.Get("X-Seen"), "short answer", "POST /rt/send?seq=1 6:mhello")
	}
}

// TestHoldsBodyUntilComplete is the buffering proxy in front of a stream:
// headers pass, the flushed parts do not, until the response ends.
func TestHoldsBodyUntilComplete(t *testing.T) {
	s := newStreamer(":end\n\n", ":prelude\n\n", "event: h\ndata:\n\n")
	p := newProxy(t, newTarget(t, s).URL, nil)
	res := get(t, newClient(t), p.URL()+"/sse")
	<-s.flushed
	if res.Header.Get("X-Target") != "streamer" {
		t.Errorf("headers were not forwarded: %v", res.Header)
	}
	readRest := expectHeld(t, res.Body)
	close(s.release)
	body, err := readRest()
	if err != nil {
		t.Fatal(err)
	}
	if want := ":prelude\n\nevent: h\ndata:\n\n:end\n\n"; string(body) != want {
		t.Errorf("body = %q, want %q", body, want)
	}
}

func TestFlushBytes(t *testing.T) {
	s := newStreamer("dd", "aaaa", "bbbb", "cccc")
	p := newProxy(t, newTarget(t, s).URL, &bufferproxy.Options{FlushBytes: 10})
	res := get(t, newClient(t), p.URL())
	<-s.flushed
	// The first 10 bytes fill a buffer and are released; the other 2 wait.
	first := make([]byte, 10)
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "aaaabbbbcc" {
		t.Fatalf("first block = %q, %v, want %q", first, err, "aaaabbbbcc")
	}
	readRest := expectHeld(t, res.Body)
	close(s.release)
	rest, err := readRest()
	if err != nil || string(rest) != "ccdd" {
		t.Errorf("rest = %q, %v, want %q", rest, err, "ccdd")
	}
	if st := p.Stats(); st.Requests != 1 || st.Released != 2 {
		t.Errorf("Stats() = %+v, want 1 request, 2 blocks released", st)
	}
}

func TestHoldHeaders(t *testing.T) {
	s := newStreamer("end", "prelude")
	p := newProxy(t, newTarget(t, s).URL, &bufferproxy.Options{HoldHeaders: true})
	c := newClient(t)
	type result struct {
		res *http.Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.Get(p.URL())
		done <- result{res, err}
	}()
	<-s.flushed
	select {
	case r := <-done:
		if r.err == nil {
			r.res.Body.Close()
		}
		t.Fatalf("response headers reached the client before the body was complete (err %v)", r.err)
	case <-time.After(quiet):
	}
	close(s.release)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.res.Body.Close()
	body, err := io.ReadAll(r.res.Body)
	if err != nil || string(body) != "preludeend" {
		t.Errorf("body = %q, %v, want %q", body, err, "preludeend")
	}
}

var upgradeTests = []struct {
	strip bool
	want  string
}{
	{false, "websocket"},
	{true, ""},
}

func TestStripUpgrade(t *testing.T) {
	target := newTarget(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Upgrade"))
	}))
	for _, tt := range upgradeTests {
		p := newProxy(t, target.URL, &bufferproxy.Options{StripUpgrade: tt.strip})
		req, _ := http.NewRequest(http.MethodGet, p.URL()+"/rt/websocket", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		res, err := newClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(got) != tt.want {
			t.Errorf("StripUpgrade %v: target saw Upgrade %q, want %q", tt.strip, got, tt.want)
		}
	}
}

// TestCloseWhileHeld closes the proxy while a response is held and the
// target is still streaming; TestMain checks that no goroutine survived.
func TestCloseWhileHeld(t *testing.T) {
	s := newStreamer("never", "prelude")
	p, err := bufferproxy.New(newTarget(t, s).URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := get(t, newClient(t), p.URL())
	<-s.flushed
	if err := p.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Error("held body ended cleanly after Close, want an error")
	}
}

// TestClientGoesAway checks that a client abandoning a held response ends
// the request to the target.
func TestClientGoesAway(t *testing.T) {
	s := newStreamer("never", "prelude")
	target := newTarget(t, s)
	p := newProxy(t, target.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL(), nil)
	res, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-s.flushed
	cancel()
	if _, err := io.ReadAll(res.Body); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want %v", err, context.Canceled)
	}
	res.Body.Close()
	// target.Close (at cleanup) blocks until the streamer's handler returns,
	// which it does only when the proxy drops its request.
}

var badTargets = []string{"", "127.0.0.1:80", "https://127.0.0.1", "http://", "://x"}

func TestNewBadTarget(t *testing.T) {
	for _, target := range badTargets {
		if p, err := bufferproxy.New(target, nil); err == nil {
			p.Close()
			t.Errorf("New(%q) succeeded, want an error", target)
		}
	}
}
