package streaming_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/streaming"
	"github.com/tetherkit/tether/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a server offering only streaming whose sessions the test drives.
type env struct {
	base string
	sess string // query with session and token
	s    *session.Session
}

func newEnv(t *testing.T, opts *tether.Options) *env {
	t.Helper()
	e := &env{}
	e.base, e.sess, e.s = conformance.RawSession(t, "streaming", opts)
	return e
}

// stream is one open multipart response, read part by part using each
// part's Content-Length, as a fetch() reader must.
type stream struct {
	resp     *http.Response
	r        *bufio.Reader
	cancel   context.CancelFunc
	boundary string
	raw      bytes.Buffer // every byte read
	started  bool         // the preamble has been read
	preamble int
	compact  bool // parts hold compact batches
}

func (e *env) open(t *testing.T, received int) *stream {
	t.Helper()
	return e.openQuery(t, fmt.Sprintf("&received=%d", received))
}

// openCompact opens a response in compact framing.
func (e *env) openCompact(t *testing.T, received int) *stream {
	t.Helper()
	st := e.openQuery(t, fmt.Sprintf("&received=%d&compact=1", received))
	_, params, _ := mime.ParseMediaType(st.resp.Header.Get("Content-Type"))
	if params["compact"] != "1" {
		t.Fatalf("Content-Type %q: want compact=1", st.resp.Header.Get("Content-Type"))
	}
	st.compact = true
	return st
}

func (e *env) openQuery(t *testing.T, query string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"streaming?"+e.sess+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := &stream{resp: resp, cancel: cancel}
	st.r = bufio.NewReader(io.TeeReader(resp.Body, &st.raw))
	t.Cleanup(st.close)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("streaming: %s", resp.Status)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: want multipart/x-mixed-replace with a boundary", resp.Header.Get("Content-Type"))
	}
	st.boundary = params["boundary"]
	return st
}

func (st *stream) close() {
	st.cancel()
	st.resp.Body.Close()
}

func (st *stream) line() (string, error) {
	l, err := st.r.ReadString('\n')
	if err != nil {
		if err == io.EOF && l != "" {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return "", fmt.Errorf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

// frames reads the next part and decodes its batch; io.EOF after the
// closing delimiter. The delimiter before a part is read with it, since a
// part ends with the CRLF that starts the next delimiter.
func (st *stream) frames(t *testing.T) ([]wire.Frame, error) {
	t.Helper()
	delim := "--" + st.boundary
	for {
		l, err := st.line()
		if err != nil {
			return nil, err
		}
		if !st.started {
			st.preamble += len(l) + 2
		}
		if l == delim {
			break
		}
		if l == delim+"--" && st.started {
			if _, err := st.r.ReadByte(); err != io.EOF {
				t.Errorf("bytes after the closing delimiter")
			}
			return nil, io.EOF
		}
		if st.started {
			return nil, fmt.Errorf("line %q, want a delimiter", l)
		}
	}
	st.started = true
	length := -1
	contentType := ""
	for {
		l, err := st.line()
		if err != nil {
			return nil, err
		}
		if l == "" {
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("bad header line %q", l)
		}
		if strings.EqualFold(name, "Content-Type") {
			contentType = strings.TrimSpace(value)
		}
		if strings.EqualFold(name, "Content-Length") {
			if length, err = strconv.Atoi(strings.TrimSpace(value)); err != nil {
				return nil, err
			}
		}
	}
	if length < 0 {
		return nil, errors.New("part without Content-Length")
	}
	if contentType != streaming.PartContentType {
		// Every part, compact or not: a part without one is sniffed.
		return nil, fmt.Errorf("part Content-Type %q, want %q", contentType, streaming.PartContentType)
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(st.r, body); err != nil {
		return nil, err
	}
	if l, err := st.line(); err != nil || l != "" {
		return nil, fmt.Errorf("part body not followed by CRLF: %q, %v", l, err)
	}
	var fs []wire.Frame
	parse := wire.ParseBatch
	if st.compact {
		parse = wire.ParseCompactBatch
	}
	err := parse(body, 1<<20, func(f wire.Frame) error {
		fs = append(fs, f)
		return nil
	})
	if err != nil {
		t.Fatalf("part %q: %v", body, err)
	}
	return fs, nil
}

func TestHeadersAndPrelude(t *testing.T) {
	e := newEnv(t, nil)
	st := e.open(t, 0)
	for name, want := range map[string]string{
		"Cache-Control":     "no-cache, no-transform",
		"X-Accel-Buffering": "no",
	} {
		if got := st.resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	fs, err := st.frames(t)
	if err != nil {
		t.Fatal(err)
	}
	if st.preamble < 1024 {
		t.Errorf("preamble of %d bytes, want at least 1 KiB of padding", st.preamble)
	}
	if len(fs) != 1 || fs[0].Type != wire.FrameHeartbeat {
		t.Errorf("first part = %+v, want one heartbeat", fs)
	}
	other := e.open(t, 0)
	if other.boundary == st.boundary {
		t.Errorf("two responses share the boundary %q", st.boundary)
	}
}

func TestHeartbeatsOnIdleStream(t *testing.T) {
	e := newEnv(t, &tether.Options{HeartbeatInterval: 20 * time.Millisecond})
	st := e.open(t, 0)
	for i := range 3 {
		fs, err := st.frames(t)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 || fs[0].Type != wire.FrameHeartbeat {
			t.Fatalf("part %d = %+v, want a heartbeat", i, fs)
		}
	}
}

// TestRecycleMidBurst sends a burst many times the byte limit while the
// client follows the responses one after the other, attaching each time
// with its count: every message arrives once, in order. Each finished
// response is also a valid multipart body for mime/multipart.
func TestRecycleMidBurst(t *testing.T) {
	testRecycleMidBurst(t, (*env).open)
}

// TestCompactRecycleMidBurst is TestRecycleMidBurst in compact framing.
func TestCompactRecycleMidBurst(t *testing.T) {
	testRecycleMidBurst(t, (*env).openCompact)
}

func testRecycleMidBurst(t *testing.T, open func(*env, *testing.T, int) *stream) {
	const limit, n = 4096, 2000
	e := newEnv(t, &tether.Options{MaxStreamBytes: limit})
	go func() {
		for i := range n {
			m := wire.Message{Type: wire.Binary, Data: fmt.Appendf(nil, "message\r\n--%d", i+1)}
			if i%2 == 0 {
				m.Type = wire.Text
			}
			if e.s.Send(context.Background(), m) != nil {
				return
			}
		}
	}()
	received, responses := 0, 0
	for received < n {
		st := open(e, t, received)
		responses++
		ended := false
		for received < n {
			fs, err := st.frames(t)
			if err == io.EOF {
				ended = true
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				if !f.IsMessage() {
					continue
				}
				received++
				if want := fmt.Sprintf("message\r\n--%d", received); string(f.Message.Data) != want {
					t.Fatalf("message %d = %q, want %q", received, f.Message.Data, want)
				}
			}
		}
		if ended {
			checkMultipart(t, st)
		}
		st.close()
	}
	if responses < 2 {
		t.Errorf("%d responses carried the burst, want it split by the byte limit", responses)
	}
}

// checkMultipart parses a whole response with mime/multipart.
func checkMultipart(t *testing.T, st *stream) {
	t.Helper()
	mr := multipart.NewReader(bytes.NewReader(st.raw.Bytes()), st.boundary)
	parts := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("mime/multipart: %v", err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("mime/multipart: %v", err)
		}
		if cl := p.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
			t.Errorf("part of %d bytes says Content-Length %s", len(body), cl)
		}
		parts++
	}
	if parts == 0 {
		t.Error("mime/multipart found no parts")
	}
}

func TestCloseEndsResponse(t *testing.T) {
	e := newEnv(t, nil)
	e.s.Send(context.Background(), wire.Message{Type: wire.Text, Data: []byte("last")})
	e.s.Close(4100, "bye")
	st := e.open(t, 0)
	var frames []wire.Frame
	for {
		fs, err := st.frames(t)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, fs...)
	}
	if len(frames) != 3 || frames[0].Type != wire.FrameHeartbeat || string(frames[1].Message.Data) != "last" ||
		frames[2].Type != wire.FrameClose || frames[2].Close.Code != 4100 || frames[2].Close.Reason != "bye" {
		t.Errorf("frames = %+v, want heartbeat, message, close 4100 \"bye\"", frames)
	}
	checkMultipart(t, st)
}

func TestSupersededResponseEnds(t *testing.T) {
	e := newEnv(t, nil)
	first := e.open(t, 0)
	if _, err := first.frames(t); err != nil {
		t.Fatal(err)
	}
	e.open(t, 0)
	for {
		_, err := first.frames(t)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
