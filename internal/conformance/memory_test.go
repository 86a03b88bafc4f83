package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
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

// stackInUse returns the bytes of goroutine stacks in use.
func stackInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
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

// TestEmptyMessageFlood floods one session of an echo server with empty
// messages and never acknowledges the echoes: every message counts
// session.MessageOverhead in the queue, so the session closes with 4002
// (or, under SlowConsumerDrop, drops echoes) while the live heap grows by
// at most about twice MaxQueuedBytes.
func TestEmptyMessageFlood(t *testing.T) {
	const (
		queued  = 1 << 20 // Options.MaxQueuedBytes
		body    = 256 << 10
		maxSent = 1_000_000 // empty messages sent at most
	)
	for _, c := range []struct {
		tr     string
		policy session.SlowConsumerPolicy
	}{
		{"send", session.SlowConsumerClose},
		{"websocket", session.SlowConsumerClose},
		{"send", session.SlowConsumerDrop},
		{"websocket", session.SlowConsumerDrop},
	} {
		tr := c.tr
		t.Run(tr+"/"+c.policy.String(), func(t *testing.T) {
			sessions := make(chan *session.Session, 1)
			h := tether.HandlerFunc(func(s *session.Session) {
				sessions <- s
				for {
					m, err := s.Recv(s.Context())
					if err != nil {
						return
					}
					if err := s.Send(s.Context(), m); err != nil && !errors.Is(err, session.ErrDropped) {
						return
					}
				}
			})
			e := newMemEnv(t, h, tether.Options{MaxQueuedBytes: queued, MaxBodyBytes: body, ReadTimeout: time.Minute, SlowConsumer: c.policy})
			batchBody := bytes.Repeat([]byte("1:m"), body/3) // empty text messages
			before, g0 := liveHeap(), runtime.NumGoroutine()
			rs := e.negotiate(t, e.req(t, "POST", "negotiate?v=1", "", nil))
			s := <-sessions
			sent := 0
			switch tr {
			case "send":
				for sent < maxSent && s.Err() == nil && s.Dropped() == 0 {
					answer := e.answer(t, e.req(t, "POST", fmt.Sprintf("send?seq=%d", sent+1), rs.query(), batchBody))
					if answer != "204" && answer != "404 unknown session" {
						t.Fatalf("send after %d messages: %s", sent, answer)
					}
					sent += body / 3
				}
			case "websocket":
				c, _, err := ws.DefaultDialer.Dial(e.wsURL(rs, "received=0&seq=1"), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetWriteDeadline(time.Now().Add(time.Minute))
			flood:
				for sent < maxSent && s.Err() == nil && s.Dropped() == 0 {
					for range 1000 {
						if err := c.WriteMessage(ws.BinaryMessage, nil); err != nil {
							if s.Err() != nil {
								break flood // closed meanwhile: the server let go of the socket
							}
							t.Fatalf("write after %d messages: %v", sent, err)
						}
						sent++
					}
				}
			}
			// The session keeps its unacknowledged messages for the
			// client's next attach: they are all still held here.
			growth, g1 := liveHeap()-before, runtime.NumGoroutine()
			outSent, outAcked := s.Sent()
			t.Logf("%s, %s: %d empty messages sent, %d echoes queued unacknowledged, %d dropped, session %v; live heap %+d bytes, goroutines %d -> %d",
				tr, c.policy, sent, outSent-outAcked, s.Dropped(), s.Err(), growth, g0, g1)
			switch code := wire.CloseStatus(s.Err()); {
			case c.policy == session.SlowConsumerClose && code != wire.StatusSlowConsumer:
				t.Errorf("session ended with %d after %d empty messages, want %d", code, sent, wire.StatusSlowConsumer)
			case c.policy == session.SlowConsumerDrop && (s.Err() != nil || s.Dropped() == 0):
				t.Errorf("session %v, %d echoes dropped, after %d empty messages: want it open, dropping", s.Err(), s.Dropped(), sent)
			}
			if held := outSent - outAcked; held > queued/session.MessageOverhead {
				t.Errorf("%d echoes queued, want at most MaxQueuedBytes / MessageOverhead = %d", held, queued/session.MessageOverhead)
			}
			if growth > 2*queued {
				t.Errorf("live heap grew by %d bytes, want at most 2 x MaxQueuedBytes = %d", growth, 2*queued)
			}
			if tr == "send" {
				// One long poll carries at most half of
				// MaxQueuedBytes of messages, each counting
				// MessageOverhead.
				r := e.req(t, "GET", "longpoll?received=0", rs.query(), nil)
				resp, err := e.hc.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				polled, _ := io.ReadAll(resp.Body)
				frames := 0
				err = wire.ParseBatch(polled, 1<<20, func(wire.Frame) error { frames++; return nil })
				t.Logf("one long poll: %d bytes, %d frames (%v)", len(polled), frames, err)
				if want := queued / 2 / session.MessageOverhead; err != nil || frames > want {
					t.Errorf("one long poll carried %d frames (%v), want at most %d", frames, err, want)
				}
			}
		})
	}
}

// TestPaddedSendFlood fills the inbound queue of a session whose
// application does not read, with send bodies that each carry a few empty
// messages and much padding (heartbeat frames): a queued message must not
// keep the body it came in, so the live heap grows by at most about twice
// MaxQueuedBytes.
func TestPaddedSendFlood(t *testing.T) {
	const (
		queued = 1 << 20 // Options.MaxQueuedBytes
		body   = 256 << 10
		perReq = 1000 // empty messages in each body
	)
	sessions := make(chan *session.Session, 1)
	h := tether.HandlerFunc(func(s *session.Session) {
		sessions <- s
		<-s.Context().Done()
	})
	e := newMemEnv(t, h, tether.Options{MaxQueuedBytes: queued, MaxBodyBytes: body, ReadTimeout: time.Minute})
	padded := bytes.Repeat([]byte("1:m"), perReq)
	padded = append(padded, bytes.Repeat([]byte("1:h"), (body-len(padded))/3)...)
	before, g0 := liveHeap(), runtime.NumGoroutine()
	rs := e.negotiate(t, e.req(t, "POST", "negotiate?v=1", "", nil))
	s := <-sessions
	fit := queued / session.MessageOverhead / perReq // bodies accepted whole
	for i := range fit {
		if got := e.answer(t, e.req(t, "POST", fmt.Sprintf("send?seq=%d", i*perReq+1), rs.query(), padded)); got != "204" {
			t.Fatalf("send %d: %s", i, got)
		}
	}
	// One more waits for room, holding its own body only.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan string, 1)
	go func() {
		r := e.req(t, "POST", fmt.Sprintf("send?seq=%d", fit*perReq+1), rs.query(), padded).WithContext(ctx)
		resp, err := e.hc.Do(r)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- responseAnswer(resp)
	}()
	// It has filled the queue (MaxQueuedBytes / MessageOverhead empty
	// messages) when it waits.
	for deadline := time.Now().Add(time.Minute); s.Received() < queued/session.MessageOverhead; {
		select {
		case got := <-done:
			t.Fatalf("the send that should wait for room answered %s", got)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue holds %d messages, want %d", s.Received(), queued/session.MessageOverhead)
		}
	}
	growth, g1 := liveHeap()-before, runtime.NumGoroutine()
	cancel()
	t.Logf("%d padded bodies of %d bytes, %d empty messages each, not read: live heap %+d bytes, goroutines %d -> %d (answer to the last: %s)",
		fit+1, len(padded), perReq, growth, g0, g1, <-done)
	if growth > 2*queued {
		t.Errorf("live heap grew by %d bytes, want at most 2 x MaxQueuedBytes = %d", growth, 2*queued)
	}
}

// TestUnreadWebSocketFlood fills the inbound queue of a session whose
// application does not read with empty binary WebSocket messages: each is
// held in a buffer of its own size (not the 512 bytes io.ReadAll starts
// with), so the live heap grows by at most about twice MaxQueuedBytes.
func TestUnreadWebSocketFlood(t *testing.T) {
	const queued = 1 << 20 // Options.MaxQueuedBytes
	sessions := make(chan *session.Session, 1)
	h := tether.HandlerFunc(func(s *session.Session) {
		sessions <- s
		<-s.Context().Done()
	})
	e := newMemEnv(t, h, tether.Options{MaxQueuedBytes: queued})
	before, g0 := liveHeap(), runtime.NumGoroutine()
	rs := e.negotiate(t, e.req(t, "POST", "negotiate?v=1", "", nil))
	s := <-sessions
	c, _, err := ws.DefaultDialer.Dial(e.wsURL(rs, "received=0&seq=1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Minute))
	fit := queued / session.MessageOverhead
	for i := range fit + 100 { // the last ones wait in the socket
		if err := c.WriteMessage(ws.BinaryMessage, nil); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for deadline := time.Now().Add(time.Minute); s.Received() < uint64(fit); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the queue holds %d messages, want %d", s.Received(), fit)
		}
	}
	growth, g1 := liveHeap()-before, runtime.NumGoroutine()
	t.Logf("%d empty binary WebSocket messages queued, not read: live heap %+d bytes, goroutines %d -> %d", s.Received(), growth, g0, g1)
	if s.Received() != uint64(fit) {
		t.Errorf("the queue took %d messages, want %d", s.Received(), fit)
	}
	if growth > 2*queued {
		t.Errorf("live heap grew by %d bytes, want at most 2 x MaxQueuedBytes = %d", growth, 2*queued)
	}
}

// TestNegotiateFloodMemory negotiates sessions that never attach: each
// keeps at most tether.KeptHeaderBytes of its request's headers (here they
// carry 60 KiB), costs a few KiB without them, lives only the first-attach
// window, and once the flood has expired the server's memory is back where
// it was (its session map too).
func TestNegotiateFloodMemory(t *testing.T) {
	const (
		held  = 300    // sessions with large headers, held at once
		flood = 10_000 // sessions negotiated in the flood
		par   = 4      // negotiates at a time
	)
	pad := string(bytes.Repeat([]byte("p"), 60<<10))
	negotiateAll := func(t *testing.T, e *badEnv, n int, header string) {
		var wg sync.WaitGroup
		next := make(chan struct{})
		for range par {
			wg.Go(func() {
				for range next {
					// Not e.req, whose context and cleanup per request
					// the test would hold until it ends.
					r, err := http.NewRequest("POST", e.base+"negotiate?v=1", nil)
					if err != nil {
						t.Error(err)
						return
					}
					if header != "" {
						r.Header.Set("X-Pad", header)
					}
					if got := e.answer(t, r); !strings.HasPrefix(got, "200 ") {
						t.Errorf("negotiate: %s", got)
					}
				}
			})
		}
		for range n {
			next <- struct{}{}
		}
		close(next)
		wg.Wait()
	}

	t.Run("held", func(t *testing.T) {
		e := newMemEnv(t, echoHandler, tether.Options{FirstAttachWindow: time.Minute})
		before, g0 := liveHeap(), runtime.NumGoroutine()
		negotiateAll(t, e, held, pad)
		growth, g1 := liveHeap()-before, runtime.NumGoroutine()
		t.Logf("%d sessions never attached, negotiated with %d bytes of headers each: live heap %+d bytes (%d per session), goroutines %d -> %d",
			held, len(pad), growth, growth/held, g0, g1)
		if limit := int64(held * (tether.KeptHeaderBytes + 8<<10)); growth > limit {
			t.Errorf("live heap grew by %d bytes, want at most %d: sessions keep more than KeptHeaderBytes of headers", growth, limit)
		}
	})

	t.Run("plain", func(t *testing.T) {
		// What README says a session never attached costs: its heap, and
		// the stack of its Handler's goroutine (echo waits in Recv).
		const plain = 2000
		e := newMemEnv(t, echoHandler, tether.Options{FirstAttachWindow: time.Minute})
		before, stack0 := liveHeap(), stackInUse()
		negotiateAll(t, e, plain, "")
		e.hc.CloseIdleConnections()
		heap, stack := liveHeap()-before, stackInUse()-stack0
		t.Logf("%d sessions never attached: live heap %+d bytes (%d per session), stacks %+d bytes (%d per session)",
			plain, heap, heap/plain, stack, stack/plain)
		if limit := int64(plain * 16 << 10); heap+stack > limit {
			t.Errorf("heap and stacks grew by %d bytes, want at most %d (16 KiB per session)", heap+stack, limit)
		}
	})

	t.Run("flood", func(t *testing.T) {
		// A resume window of an hour: only the first-attach window can
		// end these sessions within the test.
		e := newMemEnv(t, echoHandler, tether.Options{FirstAttachWindow: 100 * time.Millisecond, ResumeWindow: time.Hour, MaxSessions: flood})
		before, g0 := liveHeap(), runtime.NumGoroutine()
		negotiateAll(t, e, flood, "")
		peak, gPeak := liveHeap()-before, runtime.NumGoroutine()
		for deadline := time.Now().Add(time.Minute); e.srv.Sessions() > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions never attached are still held", e.srv.Sessions())
			}
		}
		e.hc.CloseIdleConnections()
		for deadline := time.Now().Add(time.Minute); runtime.NumGoroutine() > g0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines after the flood expired, %d before", runtime.NumGoroutine(), g0)
			}
		}
		after, g1 := liveHeap()-before, runtime.NumGoroutine()
		t.Logf("flood of %d negotiates: live heap %+d bytes and %d goroutines at its end (%d before); %+d bytes and %d goroutines once expired",
			flood, peak, gPeak, g0, after, g1)
		// The runtime keeps a descriptor (under 1 KiB) of every goroutine
		// that ever ran at the same time as the others; nothing of the
		// sessions may stay (under 26 bytes each).
		if limit := int64(256<<10 + (gPeak-g0)<<10); after > limit {
			t.Errorf("live heap is %d bytes above where it was after the flood expired, want at most %d", after, limit)
		}
	})
}

// TestNegotiateBodyHeld opens many negotiate requests that each announce a
// body of 100000 bytes and send one byte of it: each is answered
// 408 request timeout once ReadTimeout has passed and its connection
// closed, and nothing is left of them.
func TestNegotiateBodyHeld(t *testing.T) {
	const conns = 64
	e := newMemEnv(t, echoHandler, tether.Options{ReadTimeout: time.Second})
	before, g0 := liveHeap(), runtime.NumGoroutine()
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		c.SetDeadline(time.Now().Add(time.Minute))
		if _, err := io.WriteString(c, "POST /rt/negotiate?v=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
	}
	held, gHeld := liveHeap()-before, runtime.NumGoroutine()
	answers := map[string]int{}
	for _, c := range open {
		answers[readAnswer(c)]++
	}
	for _, c := range open {
		c.Close()
	}
	for deadline := time.Now().Add(time.Minute); runtime.NumGoroutine() > g0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the requests were answered, %d before", runtime.NumGoroutine(), g0)
		}
	}
	after, g1 := liveHeap()-before, runtime.NumGoroutine()
	t.Logf("%d negotiates announcing 100000 bytes, one sent: live heap %+d bytes, goroutines %d -> %d while held; answers %v; then %+d bytes, %d goroutines",
		conns, held, g0, gHeld, answers, after, g1)
	if want := map[string]int{"408 request timeout": conns}; fmt.Sprint(answers) != fmt.Sprint(want) {
		t.Errorf("answers %v, want %v", answers, want)
	}
	if e.srv.Sessions() != 0 {
		t.Errorf("%d sessions made by negotiates whose body never came", e.srv.Sessions())
	}
}

// TestSendBatchAllocation sends one body of MaxBodyBytes full of empty
// messages to a server whose application takes them by callback: the
// server parses and hands them over a chunk at a time, so what it
// allocates for the request stays within a few times the body, instead of
// a Message value for every message of it at once (32 bytes for 3 of body).
func TestSendBatchAllocation(t *testing.T) {
	const body = 1 << 20
	var received atomic.Int64
	cb := &tether.Callbacks{Message: func(*session.Session, wire.Message) { received.Add(1) }}
	e := newMemEnv(t, cb, tether.Options{MaxBodyBytes: body})
	rs := e.negotiate(t, e.req(t, "POST", "negotiate?v=1", "", nil))
	batchBody := bytes.Repeat([]byte("1:m"), body/3)
	r := e.req(t, "POST", "send?seq=1", rs.query(), batchBody)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := e.answer(t, r)
	runtime.ReadMemStats(&after)
	allocated := int64(after.TotalAlloc - before.TotalAlloc)
	t.Logf("one send of %d empty messages in %d bytes: %s, %d bytes allocated", body/3, len(batchBody), got, allocated)
	if got != "204" || received.Load() != body/3 {
		t.Fatalf("send: %s, %d messages received, want 204 and %d", got, received.Load(), body/3)
	}
	if limit := int64(6 * body); allocated > limit {
		t.Errorf("one send allocated %d bytes, want at most %d (6 x its body)", allocated, limit)
	}
}

// TestConcurrentSendsMemory fills the inbound queue of a session whose
// application does not read, then sends many requests for it at once, each
// with a body of MaxBodyBytes: the newest supersedes the one waiting before
// it, which answers 503 try again, so the server holds the bodies of two
// at most (not one for each), and the session goes on.
//
// How many reach the server depends on the machine's load: the server
// closes a connection whose first request has not come within
// ReadHeaderTimeout of its accept (10 s here, as in README), and a client
// cannot tell whether a failed POST reached the server, so it does not send
// it again. So the test asserts what holds for any split: a request that
// reached the server answers 503 try again, or is the newest and waits
// until its client goes; one that did not fails on its connection.
func TestConcurrentSendsMemory(t *testing.T) {
	const (
		queued = 1 << 20 // Options.MaxQueuedBytes
		body   = 256 << 10
		sends  = 64
	)
	sessions := make(chan *session.Session, 1)
	h := tether.HandlerFunc(func(s *session.Session) {
		sessions <- s
		<-s.Context().Done()
	})
	// Sends do not attach: windows long enough for a loaded machine.
	e := newMemEnv(t, h, tether.Options{MaxQueuedBytes: queued, MaxBodyBytes: body, ReadTimeout: time.Minute, FirstAttachWindow: 2 * time.Minute, ResumeWindow: 2 * time.Minute})
	rs := e.negotiate(t, e.req(t, "POST", "negotiate?v=1", "", nil))
	s := <-sessions
	msg := "m" + strings.Repeat("x", 60<<10)
	full := batch(msg, msg, msg, msg) // 4 messages, under MaxBodyBytes
	seq := 1
	for s.Received()+4 <= queued/(60<<10+session.MessageOverhead) {
		if got := e.answer(t, e.req(t, "POST", fmt.Sprintf("send?seq=%d", seq), rs.query(), full)); got != "204" {
			t.Fatalf("send %d: %s", seq, got)
		}
		seq += 4
	}
	before, g0 := liveHeap(), runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A connection of its own for each, written at once: a pooled one,
	// dialed for a request another connection served, would wait unused
	// and the server could close it first (ReadHeaderTimeout).
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	answers := make(chan string, sends)
	for range sends {
		go func() {
			r, err := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%ssend?seq=%d&%s", e.base, seq, rs.query()), bytes.NewReader(full))
			if err != nil {
				answers <- err.Error()
				return
			}
			resp, err := hc.Do(r)
			switch {
			case err == nil:
				answers <- responseAnswer(resp)
			case ctx.Err() != nil:
				answers <- "canceled"
			default:
				// Never reached the server's handler (see above).
				t.Logf("a send failed on its connection: %v", err)
				answers <- "cut"
			}
		}()
	}
	// All but the newest are superseded, or never reached the server.
	got := map[string]int{}
	deadline := time.After(time.Minute)
	for range sends - 1 {
		select {
		case a := <-answers:
			got[a]++
		case <-deadline:
			t.Fatalf("answers after a minute: %v, want %d", got, sends-1)
		}
	}
	growth, g1 := liveHeap()-before, runtime.NumGoroutine()
	cancel()
	got[<-answers]++
	t.Logf("%d sends of %d bytes at once to a session whose queue is full: live heap %+d bytes, goroutines %d -> %d; answers %v",
		sends, len(full), growth, g0, g1, got)
	// The newest that reached the server waits until its client goes
	// (unless none reached it); every other answers 503 try again.
	if got["503 try again"]+got["cut"]+got["canceled"] != sends || got["canceled"] != 1 && got["cut"] != sends {
		t.Errorf("answers %v, want %d of 503 try again or cut, and 1 canceled", got, sends-1)
	}
	// Each connection, the server's and the client's, counts too.
	if limit := int64(4*body + sends*64<<10); growth > limit {
		t.Errorf("live heap grew by %d bytes, want at most %d (4 x MaxBodyBytes, and 64 KiB per connection): the server holds the body of every waiting send", growth, limit)
	}
	if s.Err() != nil {
		t.Errorf("session %v, want it open", s.Err())
	}
}

// TestUnreadLongPoll polls a session with many messages queued (more than
// the kernel's socket buffers hold) and never reads the answer: the server
// gives the write up after WriteTimeout and lets go of the answer, and the
// session goes on (the next poll carries the messages again).
func TestUnreadLongPoll(t *testing.T) {
	const (
		queued = 64 << 20 // Options.MaxQueuedBytes: a poll carries up to half
		msgs   = 300      // of 60 KiB: 18 MiB
	)
	e := newMemEnv(t, echoHandler, tether.Options{MaxQueuedBytes: queued, WriteTimeout: time.Second})
	rs := e.negotiate(t, e.req(t, "POST", "negotiate?v=1", "", nil))
	msg := "m" + strings.Repeat("x", 60<<10)
	for i := range msgs {
		if got := e.answer(t, e.req(t, "POST", fmt.Sprintf("send?seq=%d", i+1), rs.query(), batch(msg))); got != "204" {
			t.Fatalf("send %d: %s", i+1, got)
		}
	}
	before := liveHeap()
	c := e.dial(t, time.Minute)
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := fmt.Fprintf(c, "GET /rt/longpoll?received=0&%s HTTP/1.1\r\nHost: x\r\n\r\n", rs.query()); err != nil {
		t.Fatal(err)
	}
	// Once the answer has started, it is held until the write is given up.
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("answer: %q, %v", line, err)
	}
	held := liveHeap() - before
	for deadline := time.Now().Add(time.Minute); liveHeap()-before > 4<<20; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, the live heap is %+d bytes, want the answer let go", liveHeap()-before)
		}
	}
	t.Logf("a long poll of %d messages of 60 KiB, not read: live heap %+d bytes once it started, then let go", msgs, held)
	c.Close()
	// The messages are still there for the next poll.
	resp, err := e.hc.Do(e.req(t, "GET", "longpoll?received=0", rs.query(), nil))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	frames := 0
	if err := wire.ParseBatch(got, 1<<20, func(wire.Frame) error { frames++; return nil }); err != nil || frames != msgs {
		t.Errorf("the next poll: %d frames (%v), want %d", frames, err, msgs)
	}
}

// TestPipelinedUnread sends many requests on one connection and reads none
// of the answers: once the network's buffers are full, the server's write
// of the next answer waits for the client, for WriteTimeout at most; then
// the server closes the connection, and nothing of it is left, while the
// client still holds it.
func TestPipelinedUnread(t *testing.T) {
	e := newMemEnv(t, echoHandler, tether.Options{WriteTimeout: time.Second})
	g0 := runtime.NumGoroutine()
	var writers sync.WaitGroup
	for _, req := range []string{
		"GET /rt/tether.js HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /rt/nothing HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /rt/send?seq=1&session=AAAAAAAAAAAAAAAAAAAAAA&token=AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	} {
		c := e.dial(t, time.Minute)
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(4 << 10)
		// Until the server closes the connection, or the network holds
		// them all.
		writers.Go(func() { io.WriteString(c, strings.Repeat(req, 50_000)) })
	}
	writers.Wait()
	for deadline := time.Now().Add(time.Minute); runtime.NumGoroutine() > g0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines a minute after the requests, %d before: the server still waits for clients that read nothing", runtime.NumGoroutine(), g0)
		}
	}
}
