package conformance_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The attack table: each row is what an attacker does to a running server
// (the bad-input table's, with its limits) while three counted sessions
// exchange messages; it checks the answer PROTOCOL.md or README documents,
// then that the server lets go of what the attack made it hold: the
// goroutines and open files of the process come back to where they were
// before the row, within a bound of time. Resident memory is measured
// before, during and after each row and logged.

// usage is what the process holds.
type usage struct {
	rss        int64 // resident memory, bytes (VmRSS)
	goroutines int
	fds        int // open file descriptors
}

func (u usage) String() string {
	return fmt.Sprintf("RSS %.1f MiB, %d goroutines, %d fds", float64(u.rss)/(1<<20), u.goroutines, u.fds)
}

// measure returns what the process holds now, after a collection that
// returns freed memory to the system.
func measure(t *testing.T) usage {
	t.Helper()
	debug.FreeOSMemory()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	var u usage
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			u.rss = kb << 10
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	u.goroutines, u.fds = runtime.NumGoroutine(), len(fds)
	return u
}

// settleSlack is how far above the row's starting point the goroutines and
// open files may stay once a row is over: the background sessions' own
// requests come and go.
const settleSlack = 12

// settled waits, within a bound, until the process holds no more goroutines
// and files than before (and settleSlack), and returns what it holds then.
func settled(t *testing.T, before usage) (usage, bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		u := measure(t)
		if u.goroutines <= before.goroutines+settleSlack && u.fds <= before.fds+settleSlack {
			return u, true
		}
		if time.Now().After(deadline) {
			return u, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type attackRow struct {
	attack string // what the attacker does
	want   string // the documented outcome
	// run attacks e; during is called once the attack is at its height.
	run func(t *testing.T, e *badEnv, during func()) string
}

var attacks = []attackRow{
	{"200 long polls at once on one session", "every poll answered 200; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		const polls = 200
		answers := make(chan string, polls)
		for range polls {
			go func() {
				answers <- e.answerOrErr(e.req(t, "GET", "longpoll?received=0", s.query(), nil))
			}()
		}
		got := map[string]int{}
		for i := range polls {
			a := <-answers
			if strings.HasPrefix(a, "200") {
				a = "200"
			}
			got[a]++
			if i == polls/2 {
				during()
			}
		}
		if got["200"] != polls {
			return fmt.Sprintf("answers %v", got) + e.after(t, s)
		}
		return "every poll answered 200" + e.after(t, s)
	}},
	{"200 sends at once on one session, all of the same message", "each answered 204 or 503 try again; the message echoed once; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		const sends = 200
		answers := make(chan string, sends)
		for range sends {
			go func() {
				answers <- e.answerOrErr(e.req(t, "POST", "send?seq=1", s.query(), batch("mstorm")))
			}()
		}
		got := map[string]int{}
		for i := range sends {
			got[<-answers]++
			if i == sends/2 {
				during()
			}
		}
		s.seq, s.expect = 1, []string{"storm"}
		if got["204"] == 0 || got["204"]+got["503 try again"] != sends {
			return fmt.Sprintf("answers %v", got) + e.after(t, s)
		}
		return "each answered 204 or 503 try again; the message echoed once" + e.after(t, s)
	}},
	{"100 WebSocket attaches at once on one session", "99 closed 4009 superseded, one attached; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		const attaches = 100
		closes := make(chan int, attaches)
		var (
			mu    sync.Mutex
			conns []*ws.Conn
		)
		var wg sync.WaitGroup
		defer wg.Wait()
		for range attaches {
			wg.Go(func() {
				conn, _, err := ws.DefaultDialer.Dial(e.wsURL(s, "received=0&seq=1"), nil)
				if err != nil {
					closes <- -1
					return
				}
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
				conn.SetReadDeadline(time.Now().Add(20 * time.Second))
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						code := 0
						if ce, ok := err.(*ws.CloseError); ok {
							code = ce.Code
						}
						closes <- code
						return
					}
				}
			})
		}
		// The one attached last stays, until the test closes it.
		got := map[int]int{}
		for i := range attaches - 1 {
			got[<-closes]++
			if i == attaches/2 {
				during()
			}
		}
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		<-closes
		if got[4009] != attaches-1 {
			return fmt.Sprintf("closes %v", got) + e.after(t, s)
		}
		return "99 closed 4009 superseded, one attached" + e.after(t, s)
	}},
	{"WebSocket message in 1,000 fragments of one byte", "echoed; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		want := "m" + strings.Repeat("f", 999)
		var frames []byte
		for i := range len(want) {
			op := byte(0x0) // continuation
			if i == 0 {
				op = 0x1 // text
			}
			if i == len(want)-1 {
				op |= 0x80 // fin
			}
			frames = append(frames, maskedFrame(op, []byte{want[i]})...)
		}
		return e.echoFrames(t, frames, want, during)
	}},
	{"WebSocket message of 100,000 empty fragments", "echoed; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		frames := maskedFrame(0x1, []byte("mx"))
		empty := maskedFrame(0x0, nil)
		for range 100_000 {
			frames = append(frames, empty...)
		}
		frames = append(frames, maskedFrame(0x80, nil)...)
		return e.echoFrames(t, frames, "mx", during)
	}},
	{"WebSocket ping flood, up to 100,000 pings, nothing read", "session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		conn := e.dialWS(t, s, "received=0&seq=1")
		defer conn.Close()
		nc := conn.NetConn()
		nc.(*net.TCPConn).SetReadBuffer(4 << 10)
		ping := maskedFrame(0x89, []byte(strings.Repeat("p", 125)))
		flood := []byte(nil)
		for range 1000 {
			flood = append(flood, ping...)
		}
		// Until the network's buffers are full: the server, whose pongs
		// nobody reads, then reads no more pings.
		nc.SetWriteDeadline(time.Now().Add(3 * time.Second))
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = nc.Write(flood)
		}
		during()
		conn.Close()
		return e.after(t, s)[2:]
	}},
	{"WebSocket message trickled a byte every 200 ms", "connection dropped; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		// The heartbeat is 1 s: a connection on which no message completes
		// for 2 heartbeats is dead (PROTOCOL.md 5.3), whatever trickles.
		s := e.session(t)
		conn := e.dialWS(t, s, "received=0&seq=1")
		defer conn.Close()
		nc := conn.NetConn()
		frame := maskedFrame(0x1, []byte("m"+strings.Repeat("t", 100)))
		dropped := make(chan string, 1)
		go func() { dropped <- e.wsOutcome(t, conn) }()
		for i := 0; i < len(frame); i++ {
			if _, err := nc.Write(frame[i : i+1]); err != nil {
				break
			}
			if i == 2 {
				during()
			}
			select {
			case got := <-dropped:
				if strings.HasPrefix(got, "read: ") {
					got = "connection dropped"
				}
				return got + e.after(t, s)
			case <-time.After(200 * time.Millisecond):
			}
		}
		return "the whole message trickled in"
	}},
	{"WebSocket handshake offering permessage-deflate, then a compressed frame (RSV1)", "no extension accepted; WebSocket close 1002; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		// Compression is not offered, so there is no bomb to inflate: a
		// frame claiming it is a protocol error of the connection.
		s := e.session(t)
		h := http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; client_max_window_bits"}}
		conn, resp, err := ws.DefaultDialer.Dial(e.wsURL(s, "received=0&seq=1"), h)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		got := "no extension accepted"
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
			got = "extension accepted: " + ext
		}
		conn.NetConn().SetDeadline(time.Now().Add(30 * time.Second))
		// A deflated "m" of 1 MiB of zeros would be about 1 KiB; what
		// follows the header is never inflated.
		if _, err := conn.NetConn().Write(maskedFrame(0x80|0x40|0x1, make([]byte, 1024))); err != nil {
			t.Fatal(err)
		}
		during()
		out := e.wsOutcome(t, conn)
		if strings.Contains(out, "close 1002") {
			out = "WebSocket close 1002"
		}
		conn.Close()
		return got + "; " + out + e.after(t, s)
	}},
	{"WebSocket frames that break RFC 6455: unmasked, reserved opcode 3, ping of 126 bytes", "WebSocket close 1002 each; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		var got []string
		for i, frame := range [][]byte{
			{0x81, 0x02, 'm', 'x'}, // unmasked
			maskedFrame(0x83, []byte("mx")),
			maskedFrame(0x89, make([]byte, 126)),
		} {
			conn := e.dialWS(t, s, fmt.Sprintf("received=0&seq=%d", s.seq+1))
			if _, err := conn.NetConn().Write(frame); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				during()
			}
			out := e.wsOutcome(t, conn)
			conn.Close()
			if strings.Contains(out, "close 1002") {
				out = "WebSocket close 1002"
			}
			got = append(got, out)
		}
		if got[0] == got[1] && got[1] == got[2] {
			return got[0] + " each" + e.after(t, s)
		}
		return strings.Join(got, ", ") + e.after(t, s)
	}},
	{"50 sessions attached by WebSocket, then silent with their connections open (half-open)", "every session closed 1006", func(t *testing.T, e *badEnv, during func()) string {
		// X-Test-Expire shortens each session's resume window to 50 ms
		// once its first message is in: the server drops a connection
		// silent for two heartbeats (2 s), and the session ends when no
		// other attaches.
		const sessions = 50
		var ss []*rawSession
		for range sessions {
			r := e.req(t, "POST", "negotiate?v=1", "", nil)
			r.Header.Set("X-Test-Expire", "after-first-message")
			s := e.negotiate(t, r)
			ss = append(ss, s)
			conn := e.dialWS(t, s, "received=0&seq=1")
			defer conn.Close()
			if err := conn.WriteMessage(ws.TextMessage, []byte("mhello")); err != nil {
				t.Fatal(err)
			}
		}
		during()
		codes := map[wire.StatusCode]int{}
		for _, s := range ss {
			codes[e.ended(t, s)]++
		}
		if codes[wire.StatusAbnormalClosure] != sessions {
			return fmt.Sprintf("sessions ended with %v", codes)
		}
		return "every session closed 1006"
	}},
	{"WebSocket text message of invalid UTF-8 split across fragments", "close frame 4003 malformed frame; session closed 4003", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		conn := e.dialWS(t, s, "received=0&seq=1")
		defer conn.Close()
		frames := append(maskedFrame(0x1, []byte("m\xe2\x82")), maskedFrame(0x80, []byte("x"))...)
		if _, err := conn.NetConn().Write(frames); err != nil {
			t.Fatal(err)
		}
		during()
		return e.wsOutcome(t, conn) + e.closed(t, s)
	}},
	{"WebSocket frame announcing 2^63-1 bytes", "close frame 1009 message too big; session closed 1009", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		conn := e.dialWS(t, s, "received=0&seq=1")
		defer conn.Close()
		head := []byte{0x82, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}
		if _, err := conn.NetConn().Write(append(head, make([]byte, 64<<10)...)); err != nil {
			t.Fatal(err)
		}
		during()
		return e.wsOutcome(t, conn) + e.closed(t, s)
	}},
	{"longpoll with received=18446744073709551615", "200 16:c4000 resume gap; session closed 4000", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		during()
		return e.answer(t, e.req(t, "GET", "longpoll?received=18446744073709551615", s.query(), nil)) + e.closed(t, s)
	}},
	{"longpoll with received=18446744073709551616", "400 bad request: invalid received; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		during()
		return e.answer(t, e.req(t, "GET", "longpoll?received=18446744073709551616", s.query(), nil)) + e.after(t, s)
	}},
	{"send of two messages with seq=18446744073709551615", "409 sequence gap; session closed 4000", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		during()
		return e.answer(t, e.req(t, "POST", "send?seq=18446744073709551615", s.query(), batch("ma", "mb"))) + e.closed(t, s)
	}},
	{"WebSocket attach with seq=18446744073709551615, then a message", "close frame 4000 sequence gap; session closed 4000", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		conn := e.dialWS(t, s, "received=0&seq=18446744073709551615")
		defer conn.Close()
		if err := conn.WriteMessage(ws.TextMessage, []byte("mx")); err != nil {
			t.Fatal(err)
		}
		during()
		return e.wsOutcome(t, conn) + e.closed(t, s)
	}},
	{"sse with Last-Event-ID: 18446744073709551615", "200 stream, close frame 4000 resume gap; session closed 4000", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		r := e.req(t, "GET", "sse?received=0", s.query(), nil)
		r.Header.Set("Last-Event-ID", "18446744073709551615")
		resp, err := e.hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		during()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		got := fmt.Sprintf("%d stream", resp.StatusCode)
		if strings.Contains(string(body), "c4000 resume gap") {
			got += ", close frame 4000 resume gap"
		}
		return got + e.closed(t, s)
	}},
	{"longpoll with its query 5,000 times received=0", "200; session unaffected", func(t *testing.T, e *badEnv, during func()) string {
		s := e.session(t)
		during()
		got := e.answer(t, e.req(t, "GET", "longpoll?"+strings.Repeat("received=0&", 5000), s.query(), nil))
		if strings.HasPrefix(got, "200") {
			got = "200"
		}
		return got + e.after(t, s)
	}},
	{"longpoll with a query over MaxHeaderBytes (and net/http's 4 KiB of slack)", "431 431 Request Header Fields Too Large", func(t *testing.T, e *badEnv, during func()) string {
		during()
		return e.rawHTTP(t, "GET /rt/longpoll?x="+strings.Repeat("a", badHeaderBytes+8<<10)+" HTTP/1.1\r\nHost: x\r\n\r\n", false)
	}},
	{"sse attached and never read, while the client sends what the application echoes", "every send 204 until the queue limit; session closed 4002", func(t *testing.T, e *badEnv, during func()) string {
		return e.unreadStream(t, "sse", during)
	}},
	{"streaming attached and never read, while the client sends what the application echoes", "every send 204 until the queue limit; session closed 4002", func(t *testing.T, e *badEnv, during func()) string {
		return e.unreadStream(t, "streaming", during)
	}},
}

// TestAttacks runs the attack table against one server while three
// background sessions exchange counted messages, then checks their counts.
func TestAttacks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newBadEnv(t)
	bg := e.background(t, ctx)
	for _, row := range attacks {
		t.Run(row.attack, func(t *testing.T) {
			before := measure(t)
			var during usage
			got := row.run(t, e, func() { during = measure(t) })
			if got != row.want {
				t.Errorf("%s:\n got %s\nwant %s", row.attack, got, row.want)
			}
			after, ok := settled(t, before)
			t.Logf("before: %v; during: %v; after: %v", before, during, after)
			if !ok {
				t.Errorf("the server still holds what the attack made it hold: before %v, after %v", before, after)
			}
		})
	}
	bg.check(t)
}

// echoFrames writes the raw WebSocket frames of one message to a fresh
// session's WebSocket and reports "echoed" when its echo is want, then
// whether the session goes on.
func (e *badEnv) echoFrames(t *testing.T, frames []byte, want string, during func()) string {
	s := e.session(t)
	conn := e.dialWS(t, s, "received=0&seq=1")
	defer conn.Close()
	if _, err := conn.NetConn().Write(frames); err != nil {
		t.Fatal(err)
	}
	during()
	got := e.readWSMessage(t, conn)
	s.seq, s.received = 1, 1
	conn.Close()
	if got != want {
		return fmt.Sprintf("got %.20q", got)
	}
	return "echoed" + e.after(t, s)
}

// unreadStream attaches a stream of kind to a fresh session from a client
// that never reads it, then sends messages of badMaxMessage bytes, which the
// echo application sends back on the stream, until a send is refused.
func (e *badEnv) unreadStream(t *testing.T, kind string, during func()) string {
	s := e.session(t)
	conn := e.dial(t, time.Minute)
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := io.WriteString(conn, "GET /rt/"+kind+"?received=0&"+s.query()+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	msg := "m" + strings.Repeat("x", badMaxMessage-1)
	var frames []string
	for len(batch(append(frames, msg)...)) <= badMaxBody {
		frames = append(frames, msg)
	}
	body := batch(frames...)
	got := ""
	for sends := 0; got == ""; sends++ {
		answer := e.answer(t, e.req(t, "POST", fmt.Sprintf("send?seq=%d", sends*len(frames)+1), s.query(), body))
		switch {
		case sends > 2*defaultQueued/badMaxBody:
			got = fmt.Sprintf("%d sends 204, and no end", sends)
		case answer == "204":
			if sends == defaultQueued/badMaxBody/2 {
				during()
			}
		case answer == "404 unknown session" && sends > 0:
			got = "every send 204 until the queue limit"
		default:
			got = fmt.Sprintf("send %d: %s", sends, answer)
		}
	}
	return got + e.closed(t, s)
}

// defaultQueued is Options.MaxQueuedBytes's default.
const defaultQueued = 4 << 20

// answerOrErr is answer, with a failed request as its answer.
func (e *badEnv) answerOrErr(r *http.Request) string {
	resp, err := e.hc.Do(r)
	if err != nil {
		return "error: " + err.Error()
	}
	return responseAnswer(resp)
}

// dialWS attaches a WebSocket to s with query.
func (e *badEnv) dialWS(t *testing.T, s *rawSession, query string) *ws.Conn {
	t.Helper()
	conn, _, err := ws.DefaultDialer.Dial(e.wsURL(s, query), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.NetConn().SetDeadline(time.Now().Add(30 * time.Second))
	return conn
}

// readWSMessage returns the next Tether message frame the WebSocket carries
// ("m..."), skipping acknowledgements and heartbeats, or what ended it.
func (e *badEnv) readWSMessage(t *testing.T, conn *ws.Conn) string {
	for {
		_, p, err := conn.ReadMessage()
		if err != nil {
			return "read: " + err.Error()
		}
		if len(p) > 0 && (p[0] == 'm' || p[0] == 'c') {
			return string(p)
		}
	}
}

// wsOutcome returns the Tether close frame the WebSocket gets, or its
// WebSocket close.
func (e *badEnv) wsOutcome(t *testing.T, conn *ws.Conn) string {
	for {
		p := e.readWSMessage(t, conn)
		switch {
		case strings.HasPrefix(p, "c"):
			return "close frame " + p[1:]
		case strings.HasPrefix(p, "read: "):
			return p
		}
	}
}

// maskedFrame returns a client's WebSocket frame: b0 (FIN and opcode),
// then payload, masked with a zero key.
func maskedFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("maskedFrame: payload too long")
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, payload...)
}

// background is the three counted sessions of the bad-input and attack
// tables.
type background struct {
	stop func()
	bgs  []*backgroundSession
}

// background starts three sessions (websocket, longpoll, sse) exchanging
// counted messages with e's echo server until check.
func (e *badEnv) background(t *testing.T, ctx context.Context) *background {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	b := &background{stop: func() { close(stop); wg.Wait() }}
	for _, name := range []string{"websocket", "longpoll", "sse"} {
		bs := &backgroundSession{transport: name}
		b.bgs = append(b.bgs, bs)
		c, err := client.Dial(ctx, e.base, &client.Options{Transports: []string{name}, HTTPClient: e.hc})
		if err != nil {
			t.Fatalf("background %s: %v", name, err)
		}
		wg.Go(func() { bs.run(ctx, c, stop) })
	}
	return b
}

// check stops the sessions and checks that every message came back, once.
func (b *background) check(t *testing.T) {
	t.Helper()
	b.stop()
	for _, bs := range b.bgs {
		if bs.err != nil {
			t.Errorf("background %s after %d messages: %v", bs.transport, bs.received, bs.err)
			continue
		}
		if bs.received != bs.sent || bs.sent == 0 {
			t.Errorf("background %s: sent %d, received %d back", bs.transport, bs.sent, bs.received)
		}
		t.Logf("background %s: %d messages each way through the whole table, exact", bs.transport, bs.sent)
	}
}

// TestFullQueuesMemory holds many sessions, each with its queue to the
// client full (the echoes of what its client sent, never acknowledged), and
// measures what each costs: its queue (MaxQueuedBytes, which counts each
// message's payload and session.MessageOverhead) and what a session costs
// when nothing is queued (under 16 KiB of heap and stack, see
// TestNegotiateFloodMemory). README's limits section states the product.
func TestFullQueuesMemory(t *testing.T) {
	const (
		queued  = 16 << 10 // Options.MaxQueuedBytes
		message = 1 << 10
		par     = 4
	)
	sessions := 10_000
	if raceDetector {
		sessions = 1_000
	}
	// Sessions never attach and wait an hour: nothing acknowledges their
	// echoes, and nothing ends them within the test.
	var echoed atomic.Int64
	h := tether.HandlerFunc(func(s *session.Session) {
		for {
			m, err := s.Recv(s.Context())
			if err != nil || s.Send(s.Context(), m) != nil {
				return
			}
			echoed.Add(1)
		}
	})
	e := newMemEnv(t, h, tether.Options{MaxQueuedBytes: queued, FirstAttachWindow: time.Hour, ResumeWindow: time.Hour})
	fits := queued / (message + session.MessageOverhead)
	frames := make([]string, fits)
	for i := range frames {
		frames[i] = "m" + strings.Repeat("q", message)
	}
	body := batch(frames...)
	before, stack0, u0 := liveHeap(), stackInUse(), measure(t)
	var wg sync.WaitGroup
	next := make(chan struct{})
	for range par {
		wg.Go(func() {
			for range next {
				r, err := http.NewRequest("POST", e.base+"negotiate?v=1", nil)
				if err != nil {
					t.Error(err)
					return
				}
				s := e.negotiate(t, r)
				r, err = http.NewRequest("POST", e.base+"send?seq=1&"+s.query(), bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				if got := e.answer(t, r); got != "204" {
					t.Errorf("send: %s", got)
				}
			}
		})
	}
	for range sessions {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	for deadline := time.Now().Add(time.Minute); echoed.Load() < int64(sessions*fits); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d echoes queued, want %d", echoed.Load(), sessions*fits)
		}
	}
	e.hc.CloseIdleConnections()
	heap, stack, u1 := liveHeap()-before, stackInUse()-stack0, measure(t)
	perSession := (heap + stack) / int64(sessions)
	t.Logf("%d sessions, each with %d echoes of %d bytes queued (MaxQueuedBytes %d): live heap %+d bytes, stacks %+d bytes: %d bytes per session; before: %v; after: %v",
		sessions, fits, message, queued, heap, stack, perSession, u0, u1)
	if limit := int64(queued + 16<<10); perSession > limit {
		t.Errorf("a session with a full queue holds %d bytes, want at most MaxQueuedBytes + 16 KiB = %d", perSession, limit)
	}
}
