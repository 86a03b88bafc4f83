package sse_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a server offering only sse whose sessions the test drives.
type env struct {
	base string
	sess string // query with session and token
	s    *session.Session
}

func newEnv(t *testing.T, opts *tether.Options) *env {
	t.Helper()
	e := &env{}
	e.base, e.sess, e.s = conformance.RawSession(t, "sse", opts)
	return e
}

// event is one dispatched server-sent event.
type event struct {
	id    string
	hasID bool
	data  string
}

// stream is one open SSE response, read event by event.
type stream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
	bytes  int
}

// open GETs {prefix}sse with query and, when lastID is not empty, a
// Last-Event-ID header.
func (e *env) open(t *testing.T, query, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"sse?"+e.sess+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := &stream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(st.close)
	return st
}

func (st *stream) close() {
	st.cancel()
	st.resp.Body.Close()
}

// next returns the next event, skipping comments and field-only blocks as
// an EventSource does; io.EOF when the response ends.
func (st *stream) next() (event, error) {
	var ev event
	var data []string
	for {
		line, err := st.r.ReadString('\n')
		st.bytes += len(line)
		if err != nil {
			if err == io.EOF && line != "" {
				return event{}, io.ErrUnexpectedEOF
			}
			return event{}, err
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.ContainsRune(line, '\r') {
			return event{}, fmt.Errorf("line with a carriage return: %q", line)
		}
		switch {
		case line == "":
			if data == nil {
				ev = event{}
				continue
			}
			ev.data = strings.Join(data, "\n")
			return ev, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			ev.id, ev.hasID = strings.TrimPrefix(line, "id:"), true
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(line, "data:"))
		case strings.HasPrefix(line, "retry:"):
		default:
			return event{}, fmt.Errorf("unexpected line %q", line)
		}
	}
}

// nextFrame returns the next event's frame, decoded.
func (st *stream) nextFrame(t *testing.T) (event, wire.Frame, error) {
	t.Helper()
	ev, err := st.next()
	if err != nil {
		return ev, wire.Frame{}, err
	}
	f, err := wire.ParseFrame([]byte(ev.data), 1<<20)
	if err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	return ev, f, nil
}

func TestHeadersAndPrelude(t *testing.T) {
	e := newEnv(t, nil)
	st := e.open(t, "&received=0", "")
	h := st.resp.Header
	for name, want := range map[string]string{
		"Content-Type":      "text/event-stream; charset=utf-8",
		"Cache-Control":     "no-cache, no-transform",
		"X-Accel-Buffering": "no",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	first, err := st.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, ":") || len(first) < 1024 {
		t.Errorf("first line is %d bytes starting %.10q, want a padding comment of at least 1 KiB", len(first), first)
	}
	ev, f, err := st.nextFrame(t)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != wire.FrameHeartbeat || ev.hasID {
		t.Errorf("first event = %+v, want a heartbeat without id", ev)
	}
}

func TestMessagesCarryNumbersAsIDs(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	msgs := []wire.Message{
		{Type: wire.Text, Data: []byte("hello")},
		{Type: wire.Text, Data: []byte("two\nlines\r\n")},
		{Type: wire.Binary, Data: []byte{0, 1, 2, '\n', 0xff}},
		{Type: wire.Text, Data: []byte("")},
	}
	for _, m := range msgs {
		if err := e.s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	st := e.open(t, "&received=0", "")
	for i := 0; i < len(msgs); {
		ev, f, err := st.nextFrame(t)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if !f.IsMessage() {
			t.Fatalf("frame %q, want a message", ev.data)
		}
		if want := strconv.Itoa(i + 1); ev.id != want {
			t.Errorf("message %d has id %q, want %q", i+1, ev.id, want)
		}
		if f.Message.Type != msgs[i].Type || string(f.Message.Data) != string(msgs[i].Data) {
			t.Errorf("message %d = %v %q, want %v %q", i+1, f.Message.Type, f.Message.Data, msgs[i].Type, msgs[i].Data)
		}
		i++
	}
}

func TestHeartbeatsOnIdleStream(t *testing.T) {
	e := newEnv(t, &tether.Options{HeartbeatInterval: 20 * time.Millisecond})
	st := e.open(t, "&received=0", "")
	for i := range 3 {
		ev, f, err := st.nextFrame(t)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != wire.FrameHeartbeat {
			t.Fatalf("event %d = %q, want a heartbeat", i, ev.data)
		}
	}
}

// TestRecycleMidBurst sends a burst many times the byte limit while the
// client follows the responses one after the other, attaching each time
// with its count: every message arrives once, in order.
func TestRecycleMidBurst(t *testing.T) {
	const limit, n = 4096, 2000
	e := newEnv(t, &tether.Options{MaxStreamBytes: limit})
	go func() {
		for i := range n {
			m := wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "message %d", i+1)}
			if i%3 == 0 {
				m.Type = wire.Binary
			}
			if e.s.Send(context.Background(), m) != nil {
				return
			}
		}
	}()
	received, responses := 0, 0
	for received < n {
		st := e.open(t, fmt.Sprintf("&received=%d", received), "")
		responses++
		for received < n {
			ev, f, err := st.nextFrame(t)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !f.IsMessage() {
				continue
			}
			received++
			if want := fmt.Sprintf("message %d", received); string(f.Message.Data) != want || ev.id != strconv.Itoa(received) {
				t.Fatalf("got id %s %q, want id %d %q", ev.id, f.Message.Data, received, want)
			}
		}
		// A response stops after the batch that reaches the limit.
		if st.bytes > limit+64<<10 {
			t.Errorf("response carried %d bytes, limit %d", st.bytes, limit)
		}
		st.close()
	}
	if responses < 2 {
		t.Errorf("%d responses carried the burst, want it split by the byte limit", responses)
	}
}

// TestLastEventIDResumes reconnects as an EventSource does: the same URL,
// whose received is stale, and the last id seen in Last-Event-ID.
func TestLastEventIDResumes(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 10 {
		e.s.Send(context.Background(), wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "m%d", i+1)})
	}
	st := e.open(t, "&received=0", "")
	lastID := ""
	for lastID != "4" {
		ev, _, err := st.nextFrame(t)
		if err != nil {
			t.Fatal(err)
		}
		if ev.hasID {
			lastID = ev.id
		}
	}
	st.close()

	for _, query := range []string{"&received=0", ""} {
		st = e.open(t, query, lastID)
		if st.resp.StatusCode != http.StatusOK {
			t.Fatalf("query %q with Last-Event-ID: %s", query, st.resp.Status)
		}
		for {
			ev, f, err := st.nextFrame(t)
			if err != nil {
				t.Fatal(err)
			}
			if f.IsMessage() {
				if ev.id != "5" || string(f.Message.Data) != "m5" {
					t.Fatalf("query %q: first message after Last-Event-ID 4 = id %s %q, want id 5 \"m5\"", query, ev.id, f.Message.Data)
				}
				break
			}
		}
		st.close()
	}
}

// TestMissingReceivedWithoutLastEventID checks that a request states its
// received count with the parameter or a Last-Event-ID that is a count: a
// malformed Last-Event-ID is ignored, so it is missing.
func TestMissingReceivedWithoutLastEventID(t *testing.T) {
	e := newEnv(t, nil)
	for _, lastID := range []string{"", "x", "007", "-1"} {
		st := e.open(t, "", lastID)
		if st.resp.StatusCode != http.StatusBadRequest {
			t.Errorf("no received, Last-Event-ID %q: %s, want 400", lastID, st.resp.Status)
		}
		st.close()
	}
}

func TestCloseEndsResponse(t *testing.T) {
	e := newEnv(t, nil)
	e.s.Send(context.Background(), wire.Message{Type: wire.Text, Data: []byte("last")})
	e.s.Close(4100, "bye\nnow")
	st := e.open(t, "&received=0", "")
	var frames []wire.Frame
	for {
		_, f, err := st.nextFrame(t)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	if len(frames) != 3 || frames[0].Type != wire.FrameHeartbeat || string(frames[1].Message.Data) != "last" ||
		frames[2].Type != wire.FrameClose || frames[2].Close.Code != 4100 || frames[2].Close.Reason != "bye now" {
		t.Errorf("frames = %+v, want heartbeat, message, close 4100 \"bye now\"", frames)
	}
}

func TestSupersededResponseEnds(t *testing.T) {
	e := newEnv(t, nil)
	first := e.open(t, "&received=0", "")
	if _, _, err := first.nextFrame(t); err != nil {
		t.Fatal(err)
	}
	second := e.open(t, "&received=0", "")
	for {
		_, _, err := first.nextFrame(t)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	e.s.Send(context.Background(), wire.Message{Type: wire.Text, Data: []byte("after")})
	for {
		_, f, err := second.nextFrame(t)
		if err != nil {
			t.Fatal(err)
		}
		if f.IsMessage() {
			if string(f.Message.Data) != "after" {
				t.Errorf("got %q, want \"after\"", f.Message.Data)
			}
			break
		}
	}
}

// nextCompact returns the next event of a compact stream and its frames,
// decoded.
func (st *stream) nextCompact(t *testing.T) (event, []wire.Frame, error) {
	t.Helper()
	ev, err := st.next()
	if err != nil {
		return ev, nil, err
	}
	var frames []wire.Frame
	for _, p := range strings.Split(ev.data, "\x1e") {
		f, err := wire.ParseFrame([]byte(p), 1<<20)
		if err != nil {
			t.Fatalf("event data %q: frame %q: %v", ev.data, p, err)
		}
		frames = append(frames, f)
	}
	return ev, frames, nil
}

// TestCompactBatchPerEvent checks compact framing: the response says so
// in its Content-Type, an event carries a batch whose id is the number of
// its last message, and text holding a separator or a line break travels
// as base64.
func TestCompactBatchPerEvent(t *testing.T) {
	e := newEnv(t, nil)
	msgs := []wire.Message{
		{Type: wire.Text, Data: []byte("hello")},
		{Type: wire.Text, Data: []byte("a\x1eb")},
		{Type: wire.Text, Data: []byte("two\nlines\r\n")},
		{Type: wire.Binary, Data: []byte{0, 1, 0x1e, '\n', 0xff}},
		{Type: wire.Text, Data: []byte("")},
	}
	for _, m := range msgs {
		if err := e.s.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	st := e.open(t, "&received=0&compact=1", "")
	if got, want := st.resp.Header.Get("Content-Type"), "text/event-stream; charset=utf-8; compact=1"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	for i := 0; i < len(msgs); {
		ev, frames, err := st.nextCompact(t)
		if err != nil {
			t.Fatal(err)
		}
		if frames[0].Type == wire.FrameHeartbeat {
			if ev.hasID || len(frames) != 1 {
				t.Errorf("heartbeat event %+v, want one frame and no id", ev)
			}
			continue
		}
		for _, f := range frames {
			if !f.IsMessage() {
				t.Fatalf("event %q: frame %c, want messages", ev.data, f.Type)
			}
			if f.Message.Type != msgs[i].Type || string(f.Message.Data) != string(msgs[i].Data) {
				t.Errorf("message %d = %v %q, want %v %q", i+1, f.Message.Type, f.Message.Data, msgs[i].Type, msgs[i].Data)
			}
			if f.Type == wire.FrameText && strings.ContainsAny(string(f.Message.Data), "\r\n\x1e") {
				t.Errorf("message %d sent raw holding a separator", i+1)
			}
			i++
		}
		if want := strconv.Itoa(i); ev.id != want {
			t.Errorf("event with messages up to %d has id %q, want %q", i, ev.id, want)
		}
	}
}

// TestCompactLastEventIDResumes reconnects a compact stream as a bare
// EventSource does (the same URL, whose received is stale or absent, and
// Last-Event-ID): an event's id is the number of its last message, so the
// stream resumes exactly after it, with nothing lost or repeated.
func TestCompactLastEventIDResumes(t *testing.T) {
	e := newEnv(t, nil)
	send := func(from, to int) {
		for i := from; i <= to; i++ {
			e.s.Send(context.Background(), wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "m%d", i)})
		}
	}
	send(1, 4)
	st := e.open(t, "&received=0&compact=1", "")
	lastID, got := "", 0
	for got < 4 {
		ev, frames, err := st.nextCompact(t)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			if f.IsMessage() {
				got++
			}
		}
		if ev.hasID {
			lastID = ev.id
		}
	}
	st.close()
	if lastID != "4" {
		t.Fatalf("last id after 4 messages = %q, want 4", lastID)
	}
	send(5, 10)

	for _, query := range []string{"&received=0&compact=1", "&compact=1"} {
		st = e.open(t, query, lastID)
		if st.resp.StatusCode != http.StatusOK {
			t.Fatalf("query %q with Last-Event-ID: %s", query, st.resp.Status)
		}
		next := 5
		for next <= 10 {
			ev, frames, err := st.nextCompact(t)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				if !f.IsMessage() {
					continue
				}
				if want := fmt.Sprintf("m%d", next); string(f.Message.Data) != want {
					t.Fatalf("query %q: message %q after Last-Event-ID 4, want %q", query, f.Message.Data, want)
				}
				next++
			}
			if ev.hasID && ev.id != strconv.Itoa(next-1) {
				t.Fatalf("query %q: event id %q after message %d", query, ev.id, next-1)
			}
		}
		st.close()
	}
}
