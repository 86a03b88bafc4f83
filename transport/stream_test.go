package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// TestMain fails the package's tests on leaked goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lineEncoder writes each message as "<number> <data>\n" and a control
// frame as "ctrl <frame>\n", so the test can read responses line by line.
type lineEncoder struct{}

func (lineEncoder) AppendBatch(dst []byte, b *session.Batch, ctrl []byte) []byte {
	for i, m := range b.Messages {
		dst = fmt.Appendf(dst, "%d %s\n", b.First+uint64(i), m.Data)
	}
	if ctrl != nil {
		dst = fmt.Appendf(dst, "ctrl %s\n", ctrl)
	}
	return dst
}

func streamServer(t *testing.T, s *session.Local, maxBytes int) string {
	t.Helper()
	cfg := &transport.Config{HeartbeatInterval: time.Hour, MaxMessageBytes: 1 << 10, MaxBodyBytes: 1 << 20, WriteTimeout: 5 * time.Second}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received, _ := strconv.ParseUint(r.URL.Query().Get("received"), 10, 64)
		probe := r.URL.Query().Get("probe") == "1"
		transport.ServeStream(w, r, &transport.Attach{Session: s, Received: received, Config: cfg, Probe: probe}, &transport.Stream{
			Name:           "test",
			ContentType:    "text/plain",
			Prelude:        []byte("prelude\n"),
			Encoder:        lineEncoder{},
			Epilogue:       []byte("end\n"),
			MaxStreamBytes: maxBytes,
		})
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// readLines reads len(want) lines from br and fails the test unless they
// are want, in order; what names the response in the message.
func readLines(t *testing.T, what string, br *bufio.Reader, want ...string) {
	t.Helper()
	for _, w := range want {
		if l, err := br.ReadString('\n'); strings.TrimSuffix(l, "\n") != w {
			t.Fatalf("%s: line %q (%v), want %q", what, l, err, w)
		}
	}
}

// TestServeStreamRecyclesWithoutLoss follows a closed session's 300
// messages over responses limited to 200 bytes, then to less than the
// prelude (each response still carries a batch).
func TestServeStreamRecyclesWithoutLoss(t *testing.T) {
	for _, limit := range []int{200, 1} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) { testRecycle(t, limit) })
	}
}

// closedSession returns a session that sent n messages, "msg1" to "msgN",
// and then its close frame, 1000 done.
func closedSession(t *testing.T, n int) *session.Local {
	s := session.New(&session.Config{HeartbeatInterval: time.Hour, ResumeWindow: time.Minute, MaxMessageBytes: 1 << 10, MaxQueuedBytes: 1 << 20}, session.RequestInfo{}, nil)
	t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusNormalClosure}) })
	for i := range n {
		if err := s.Send(context.Background(), wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "msg%d", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close(wire.StatusNormalClosure, "done")
	return s
}

func testRecycle(t *testing.T, limit int) {
	const n = 300
	url := streamServer(t, closedSession(t, n), limit)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	received, responses := 0, 0
	for closed := false; !closed; {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s?received=%d", url, received), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		responses++
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) < 3 || lines[0] != "prelude" || lines[1] != "ctrl h" || lines[len(lines)-1] != "end" {
			t.Fatalf("response %d = %q, want prelude, heartbeat, ..., epilogue", responses, body)
		}
		for _, l := range lines[2 : len(lines)-1] {
			if l == "ctrl c1000 done" {
				closed = true
				continue
			}
			received++
			if want := fmt.Sprintf("%d msg%d", received, received); l != want {
				t.Fatalf("line %q, want %q", l, want)
			}
		}
	}
	if received != n {
		t.Errorf("received %d messages, want %d", received, n)
	}
	if responses < 2 {
		t.Errorf("%d responses, want the byte limit to split them", responses)
	}
}

// TestServeStreamAcks: a request with acks=1 (its client acknowledges
// through send as it reads) has no byte limit: one response carries a
// closed session's 300 messages, 18 times the limit, and its close.
func TestServeStreamAcks(t *testing.T) {
	const n = 300
	url := streamServer(t, closedSession(t, n), 200)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"?received=0&"+transport.AcksParam+"=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("prelude\nctrl h\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d msg%d\n", i, i)
	}
	want.WriteString("ctrl c1000 done\nend\n")
	if string(body) != want.String() {
		t.Errorf("response = %q, want all %d messages and the close in one response", body, n)
	}
}

// TestServeStreamProbe checks that a probe answers with the prelude and a
// heartbeat at once and never attaches: the messages waiting stay for the
// attach that follows, and a connection attached meanwhile is not
// superseded. A probe of a finished session answers 404.
func TestServeStreamProbe(t *testing.T) {
	s := session.New(&session.Config{HeartbeatInterval: time.Hour, ResumeWindow: time.Minute, MaxMessageBytes: 1 << 10, MaxQueuedBytes: 1 << 20}, session.RequestInfo{}, nil)
	defer s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
	for i := range 3 {
		if err := s.Send(context.Background(), wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "msg%d", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	url := streamServer(t, s, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// An attached stream, reading msg1..msg3 and then waiting.
	actx, stopAttached := context.WithCancel(ctx)
	defer stopAttached()
	req, _ := http.NewRequestWithContext(actx, http.MethodGet, url+"?received=0", nil)
	attached, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer attached.Body.Close()
	ar := bufio.NewReader(attached.Body)
	readLines(t, "attached stream", ar, "prelude", "ctrl h", "1 msg1", "2 msg2", "3 msg3")

	for range 2 {
		pctx, leave := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(pctx, http.MethodGet, url+"?received=0&probe=1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		readLines(t, "probe", br, "prelude", "ctrl h")
		leave() // the client has seen the first bytes and goes away
		resp.Body.Close()
	}

	// The attached stream was not superseded: it carries the next message.
	if err := s.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("msg4")}); err != nil {
		t.Fatal(err)
	}
	// (After the heartbeat that follows a burst by 100 ms, when the probes
	// took longer than that.)
	l, err := ar.ReadString('\n')
	if l == "ctrl h\n" {
		l, err = ar.ReadString('\n')
	}
	if l != "4 msg4\n" {
		t.Fatalf("attached stream after the probes: line %q (%v), want \"4 msg4\"", l, err)
	}

	// Aborted while the stream is attached, the session sends its close
	// frame there and is finished once that stream detaches, which it does
	// before its response ends. (Aborted with no stream attached, it would
	// wait for the next attach to deliver the close frame, and a probe,
	// which does not attach, would still find it.)
	s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
	rest, err := io.ReadAll(ar)
	if err != nil || !strings.Contains(string(rest), "ctrl c1000") {
		t.Fatalf("attached stream after Abort: %q (%v), want the close frame", rest, err)
	}
	resp, err := http.Get(url + "?received=0&probe=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("probe of a finished session: status %d, want 404", resp.StatusCode)
	}
}

// TestServeStreamFlushesTail checks that a heartbeat follows the last batch
// of a burst soon, not a heartbeat interval (here an hour) later: a proxy
// that holds the tail of a burst in a part-filled buffer until its next
// read from upstream gets that read.
func TestServeStreamFlushesTail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := session.New(&session.Config{HeartbeatInterval: time.Hour, ResumeWindow: time.Minute, MaxMessageBytes: 1 << 10, MaxQueuedBytes: 1 << 20},
		session.RequestInfo{}, nil)
	defer s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
	base := streamServer(t, s, 1<<20)
	for i := range 3 {
		s.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(fmt.Sprintf("m%d", i))})
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"?received=0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []string
	buf := make([]byte, 4096)
	var pending string
	for len(got) == 0 || got[len(got)-1] != "ctrl h" || !strings.HasPrefix(strings.Join(got, ","), "prelude,ctrl h,1 m0,2 m1,3 m2") {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("read after %q: %v (the heartbeat after the burst never came)", got, err)
		}
		pending += string(buf[:n])
		for {
			line, rest, ok := strings.Cut(pending, "\n")
			if !ok {
				break
			}
			got, pending = append(got, line), rest
		}
	}
	if want := "prelude,ctrl h,1 m0,2 m1,3 m2,ctrl h"; strings.Join(got, ",") != want {
		t.Fatalf("stream = %q, want %q", strings.Join(got, ","), want)
	}
}

// TestServeStreamEndsCleanlyWhenIdle ends streams whose last write is older
// than the write timeout, with no epilogue (as server-sent events have
// none): a stream superseded by another, and a probe whose session ends.
// Each must end cleanly, with the end of its chunked body, not with its
// connection cut as when the expired write deadline stopped that last write.
func TestServeStreamEndsCleanlyWhenIdle(t *testing.T) {
	const writeTimeout = 20 * time.Millisecond
	for _, probe := range []bool{false, true} {
		t.Run(fmt.Sprintf("probe=%v", probe), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s := session.New(&session.Config{HeartbeatInterval: time.Hour, ResumeWindow: time.Minute, MaxMessageBytes: 1 << 10, MaxQueuedBytes: 1 << 20}, session.RequestInfo{}, nil)
			defer s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
			cfg := &transport.Config{HeartbeatInterval: time.Hour, MaxMessageBytes: 1 << 10, MaxBodyBytes: 1 << 20, WriteTimeout: writeTimeout}
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				transport.ServeStream(w, r, &transport.Attach{Session: s, Config: cfg, Probe: r.URL.Query().Get("probe") == "1"},
					&transport.Stream{Name: "test", ContentType: "text/plain", Prelude: []byte("prelude\n"), Encoder: lineEncoder{}})
			}))
			defer hs.Close()
			open := func(query string) (*http.Response, *bufio.Reader) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+query, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(resp.Body)
				readLines(t, query, br, "prelude", "ctrl h")
				return resp, br
			}
			first, br := open(map[bool]string{false: "?", true: "?probe=1"}[probe])
			defer first.Body.Close()
			time.Sleep(10 * writeTimeout) // the first bytes' write deadline passes
			if probe {
				s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
				s.Expire(0)
			} else {
				second, _ := open("?")
				defer second.Body.Close()
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Errorf("the first response's end: %q, %v; want a clean end", rest, err)
			}
		})
	}
}

// TestServeStreamProbeEndsWithSession: a probe open when its session ends
// ends as at the byte limit, with the epilogue (PROTOCOL.md section 10.1).
func TestServeStreamProbeEndsWithSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := session.New(&session.Config{HeartbeatInterval: time.Hour, ResumeWindow: time.Minute, MaxMessageBytes: 1 << 10, MaxQueuedBytes: 1 << 20}, session.RequestInfo{}, nil)
	defer s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, streamServer(t, s, 0)+"?received=0&probe=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readLines(t, "probe", br, "prelude", "ctrl h")
	s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
	s.Expire(0)
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "end\n" {
		t.Errorf("the probe's end: %q, %v; want the epilogue", rest, err)
	}
}

// TestServeStreamWriteTimeoutEndsUnreadStream: a stream whose client stops
// reading ends once a write waits for it beyond the write timeout, even
// when the writes before it came too close together to move the deadline
// (it moves at most every eighth of the timeout): the handler returns, and
// the session's link is let go.
func TestServeStreamWriteTimeoutEndsUnreadStream(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	s := session.New(&session.Config{HeartbeatInterval: time.Hour, ResumeWindow: time.Minute, MaxMessageBytes: 1 << 10, MaxQueuedBytes: 256 << 20}, session.RequestInfo{}, nil)
	defer s.Abort(wire.CloseError{Code: wire.StatusNormalClosure})
	cfg := &transport.Config{HeartbeatInterval: time.Hour, MaxMessageBytes: 1 << 10, MaxBodyBytes: 1 << 20, WriteTimeout: writeTimeout}
	ended := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		transport.ServeStream(w, r, &transport.Attach{Session: s, Config: cfg},
			&transport.Stream{Name: "test", ContentType: "text/plain", Prelude: []byte("prelude\n"), Encoder: lineEncoder{}, MaxStreamBytes: math.MaxInt})
	}))
	defer hs.Close()
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := io.WriteString(conn, "GET /?received=0 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing from here on. Messages go out in quick
	// succession until a write waits, and then fails.
	msg := wire.Message{Type: wire.Text, Data: []byte(strings.Repeat("x", 1<<10))}
	bound := time.After(30 * time.Second) // a bound on the test, not a measurement
	for sent := 0; ; sent++ {
		select {
		case <-ended:
			if s.Transport() != "" {
				t.Fatalf("the stream ended after %d messages, and the session is still attached to %q", sent, s.Transport())
			}
			return
		case <-bound:
			t.Fatalf("the stream to a client that reads nothing goes on after %d messages and 30 s", sent)
		default:
		}
		if err := s.Send(context.Background(), msg); err != nil {
			t.Fatalf("Send %d: %v", sent, err)
		}
		if sent%64 == 63 {
			time.Sleep(time.Millisecond) // let the stream write
		}
	}
}
