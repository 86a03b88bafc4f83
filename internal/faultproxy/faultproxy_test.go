package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/internal/faultproxy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bound is the longest any single step of a test may take before it is
// reported as hung. It bounds the tests; it is never a pass criterion.
const bound = 10 * time.Second

// echoServer starts a TCP server on 127.0.0.1 that writes back what it reads
// and half-closes when its peer does. It stops at the end of the test.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string, opts *faultproxy.Options) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target, opts)
	if err != nil {
		t.Fatalf("New(%q) error: %v", target, err)
	}
	t.Logf("faultproxy seed %d", p.Seed())
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the echo back.
func roundTrip(c net.Conn, msg []byte) error {
	c.SetDeadline(time.Now().Add(bound))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// waitClosed reads from c until it fails and returns the error; a deadline
// error means the connection was not closed within the bound.
func waitClosed(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(bound))
	buf := make([]byte, 1024)
	for {
		if _, err := c.Read(buf); err != nil {
			return err
		}
	}
}

// transfer sends size random bytes while reading the echo concurrently and
// checks that every byte comes back in order.
func transfer(t *testing.T, c net.Conn, size int, seed uint64) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	c.SetDeadline(time.Now().Add(bound))
	defer c.SetDeadline(time.Time{})
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		werr <- err
	}()
	got := make([]byte, size)
	_, rerr := io.ReadFull(c, got)
	if err := <-werr; err != nil {
		t.Fatalf("write %d bytes: %v", size, err)
	}
	if rerr != nil {
		t.Fatalf("read %d bytes: %v", size, rerr)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%d bytes came back altered", size)
	}
}

// eventually polls cond until it holds or the bound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestForward(t *testing.T) {
	p := newProxy(t, echoServer(t), nil)
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("hello")); err != nil {
		t.Fatalf("round trip through the proxy: %v", err)
	}
	transfer(t, c, 1<<20, 1)

	// A half close reaches the server, and the answer still comes back.
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(bound))
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "last words" {
		t.Fatalf("after CloseWrite read %q, %v, want %q, nil", rest, err, "last words")
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	want := int64(len("hello") + 1<<20 + len("last words"))
	st := p.Stats()
	if st.Accepted != 1 || st.BytesUp != want || st.BytesDown != want || st.Cuts != 0 || st.Live != 0 {
		t.Errorf("Stats() = %+v, want 1 accepted, %d bytes each way, no cuts, none live", st, want)
	}
}

func TestConcurrentConnections(t *testing.T) {
	p := newProxy(t, echoServer(t), nil)
	var wg sync.WaitGroup
	for i := range 8 {
		c := dial(t, p.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			transfer(t, c, 64<<10, uint64(i))
		}()
	}
	wg.Wait()
	if got := p.Stats().Accepted; got != 8 {
		t.Errorf("Stats().Accepted = %d, want 8", got)
	}
}

func TestCutAll(t *testing.T) {
	p := newProxy(t, echoServer(t), nil)
	var conns []net.Conn
	for range 3 {
		c := dial(t, p.Addr())
		if err := roundTrip(c, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if n := p.CutAll(); n != 3 {
		t.Errorf("CutAll() = %d, want 3", n)
	}
	for i, c := range conns {
		if err := waitClosed(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("connection %d still open after CutAll", i)
		}
	}
	if n := p.CutAll(); n != 0 {
		t.Errorf("second CutAll() = %d, want 0", n)
	}
	eventually(t, "Live reaching 0", func() bool { return p.Stats().Live == 0 })
	if st := p.Stats(); st.Cuts != 3 {
		t.Errorf("Stats().Cuts = %d, want 3", st.Cuts)
	}

	// The proxy keeps serving after a cut.
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("again")); err != nil {
		t.Fatalf("round trip after CutAll: %v", err)
	}
}

func TestCutAfter(t *testing.T) {
	p := newProxy(t, echoServer(t), &faultproxy.Options{
		CutAfter: faultproxy.Range{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	})
	for i := range 3 {
		c := dial(t, p.Addr())
		if err := waitClosed(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d was not cut", i)
		}
	}
	eventually(t, "3 cuts counted", func() bool { return p.Stats().Cuts == 3 })
}

func TestStall(t *testing.T) {
	p := newProxy(t, echoServer(t), &faultproxy.Options{
		StallEvery: faultproxy.Range{Min: time.Millisecond, Max: 5 * time.Millisecond},
		StallFor:   faultproxy.Range{Min: time.Millisecond, Max: 10 * time.Millisecond},
	})
	c := dial(t, p.Addr())
	for i := uint64(0); p.Stats().Stalls < 3; i++ {
		transfer(t, c, 16<<10, i)
		if i > 1e5 {
			t.Fatal("no stall after many transfers")
		}
	}
}

func TestDelay(t *testing.T) {
	p := newProxy(t, echoServer(t), &faultproxy.Options{
		Delay:     faultproxy.Range{Min: 0, Max: 2 * time.Millisecond},
		ChunkSize: 1024,
	})
	c := dial(t, p.Addr())
	transfer(t, c, 64<<10, 7)
}

func TestPause(t *testing.T) {
	p := newProxy(t, echoServer(t), nil)
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("before")); err != nil {
		t.Fatal(err)
	}
	p.Pause()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	// While paused nothing can come back, however long we wait.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 16)
	if n, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read while paused = %q, %v, want a deadline error", buf[:n], err)
	}
	p.Resume()
	c.SetReadDeadline(time.Now().Add(bound))
	if _, err := io.ReadFull(c, buf[:4]); err != nil || string(buf[:4]) != "held" {
		t.Fatalf("after Resume read %q, %v, want %q", buf[:4], err, "held")
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = time.Second
	p := newProxy(t, echoServer(t), &faultproxy.Options{IdleTimeout: idle})
	quiet := dial(t, p.Addr())
	busy := dial(t, p.Addr())

	// Keep busy active with round trips far more often than the timeout,
	// until quiet has been killed and for two more timeouts after that.
	stop := make(chan struct{})
	busyErr := make(chan error, 1)
	go func() {
		tick := time.NewTicker(idle / 50)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				busyErr <- nil
				return
			case <-tick.C:
				if err := roundTrip(busy, []byte("keepalive")); err != nil {
					busyErr <- err
					return
				}
			}
		}
	}()
	if err := waitClosed(quiet); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("idle connection was not closed")
	}
	time.Sleep(2 * idle)
	close(stop)
	if err := <-busyErr; err != nil {
		t.Fatalf("active connection failed: %v", err)
	}
	if st := p.Stats(); st.IdleKills != 1 {
		t.Errorf("Stats() = %+v, want 1 idle kill", st)
	}
	eventually(t, "1 live connection", func() bool { return p.Stats().Live == 1 })
}

func TestDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := newProxy(t, target, nil)
	c := dial(t, p.Addr())
	if err := waitClosed(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("client connection left open when the target refused")
	}
	eventually(t, "dial error counted", func() bool { return p.Stats().DialErrors == 1 })
}

// TestClose closes a proxy with connections in every state; TestMain then
// checks that no goroutine survived.
func TestClose(t *testing.T) {
	p, err := faultproxy.New(echoServer(t), &faultproxy.Options{
		Delay:      faultproxy.Range{Min: time.Hour, Max: time.Hour},
		StallEvery: faultproxy.Range{Min: time.Hour, Max: time.Hour},
		CutAfter:   faultproxy.Range{Min: time.Hour, Max: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	idle := dial(t, p.Addr())
	delayed := dial(t, p.Addr())
	if _, err := delayed.Write([]byte("stuck in a delay")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 live connections", func() bool { return p.Stats().Live == 2 })
	p.Pause()
	if err := p.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	for _, c := range []net.Conn{idle, delayed} {
		if err := waitClosed(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Error("connection open after Close")
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), bound); err == nil {
		t.Error("proxy still accepts after Close")
	}
}

var invalidOptions = []faultproxy.Options{
	{CutAfter: faultproxy.Range{Min: 2 * time.Second, Max: time.Second}},
	{Delay: faultproxy.Range{Min: -time.Second, Max: time.Second}},
	{StallEvery: faultproxy.Range{Min: time.Second}},
	{IdleTimeout: -1},
	{ChunkSize: -1},
}

func TestNewInvalidOptions(t *testing.T) {
	for _, o := range invalidOptions {
		if p, err := faultproxy.New("127.0.0.1:1", &o); err == nil {
			p.Close()
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}

func TestSeed(t *testing.T) {
	p := newProxy(t, "127.0.0.1:1", &faultproxy.Options{Seed: 42})
	if got := p.Seed(); got != 42 {
		t.Errorf("Seed() = %d, want 42", got)
	}
	q := newProxy(t, "127.0.0.1:1", nil)
	if q.Seed() == 0 {
		t.Error("Seed() = 0 with no seed given, want the seed New picked")
	}
}
