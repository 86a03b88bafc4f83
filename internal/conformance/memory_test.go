package conformance_test

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

// The memory tests: what one client can make the server hold. Each measures
// the live heap (after a collection) before and while it attacks, and bounds
// the growth by what the limits promise. They run alone (the package's
// tests are not parallel), so other tests do not blur the figures.

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// newMemEnv starts a server with opts (Logger discarded) serving h, as
// newBadEnv does, for a memory test.
func newMemEnv(t *testing.T, h tether.Handler, opts tether.Options) *badEnv {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	e := &badEnv{srv: tether.NewServer(h, &opts)}
	mux := http.NewServeMux()
	mux.Handle("/rt/", e.srv)
	hs := httptest.NewUnstartedServer(mux)
	hs.Config.ReadHeaderTimeout = 10 * time.Second
	hs.Config.MaxHeaderBytes = badHeaderBytes
	hs.Start()
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

// echoHandler sends back every message it receives.
var echoHandler = tether.HandlerFunc(echo)

// echo sends back every message s receives, until it closes.
func echo(s *session.Session) {
	for {
		m, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		if s.Send(s.Context(), m) != nil {
			return
		}
	}
}

// TestSendBodyMemoryFollowsBytes opens many send requests that each announce
// a body of MaxBodyBytes and send one byte of it: the server must hold
// what arrived, not what was announced.
func TestSendBodyMemoryFollowsBytes(t *testing.T) {
	const (
		conns    = 64
		declared = 1 << 20
	)
	e := newMemEnv(t, echoHandler, tether.Options{MaxBodyBytes: declared, ReadTimeout: time.Minute})
	s := e.session(t)
	before, g0 := liveHeap(), runtime.NumGoroutine()
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	head := fmt.Sprintf("POST /rt/send?seq=1&%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", s.query(), declared)
	for range conns {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		c.SetDeadline(time.Now().Add(time.Minute))
		if _, err := c.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		// net/http answers 100 Continue at the handler's first read of
		// the body: the server has made its buffer by then.
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("answer to Expect: %q, %v", line, err)
		}
		if _, err := c.Write([]byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	growth, g1 := liveHeap()-before, runtime.NumGoroutine()
	t.Logf("%d send requests announcing %d bytes, one byte sent each: live heap %+d bytes (%d per request), goroutines %d -> %d",
		conns, declared, growth, growth/conns, g0, g1)
	if limit := int64(conns * declared / 8); growth > limit {
		t.Errorf("live heap grew by %d bytes, want at most %d: memory follows what was announced", growth, limit)
	}
}
