package sockjs

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
)

// A tracker counts the messages of one SockJS session on an HTTP transport
// from the bridge's Send to the client's response. sockjs-go holds a
// message sent between two polls in a buffer of its own and, once the
// session is closing, answers the next poll with the close frame alone:
// the bridge waits until everything it sent is written before it closes.
// What is written is also what the bridge acknowledges to the session, so
// the session's queue limit (MaxQueuedBytes) bounds what a slow HTTP client
// holds.
type tracker struct {
	s session.Endpoint

	mu      sync.Mutex
	sent    uint64        // messages handed to sockjs-go; guarded by mu
	written uint64        // messages written to responses; guarded by mu
	change  chan struct{} // closed when written grows; guarded by mu
}

func (t *tracker) addSent(n int) {
	t.mu.Lock()
	t.sent += uint64(n)
	t.mu.Unlock()
}

// addWritten records n more messages written and acknowledges them: the
// bridge's messages are numbered from 1 and written in order.
func (t *tracker) addWritten(n int) {
	t.mu.Lock()
	t.written += uint64(n)
	w := t.written
	if t.change != nil {
		close(t.change)
		t.change = nil
	}
	t.mu.Unlock()
	t.s.Acknowledge(w)
}

// waitWritten waits until every message sent is written, or ctx ends.
func (t *tracker) waitWritten(ctx context.Context) {
	for {
		t.mu.Lock()
		if t.written >= t.sent {
			t.mu.Unlock()
			return
		}
		if t.change == nil {
			t.change = make(chan struct{})
		}
		ch := t.change
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

func (h *handler) addTracker(id string, t *tracker) {
	h.mu.Lock()
	h.trackers[id] = t
	h.mu.Unlock()
}

func (h *handler) removeTracker(id string, t *tracker) {
	h.mu.Lock()
	if h.trackers[id] == t {
		delete(h.trackers, id)
	}
	h.mu.Unlock()
}

func (h *handler) tracker(id string) *tracker {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trackers[id]
}

// countingWriter is the ResponseWriter of a poll or stream request: it
// counts the messages in each frame sockjs-go writes (one frame per Write)
// into the session's tracker.
type countingWriter struct {
	http.ResponseWriter
	h  *handler
	id string // SockJS session id

	// timeout bounds each write and flush (Options.WriteTimeout):
	// sockjs-go writes its HTTP responses with no deadline, holding the
	// SockJS session's lock, so a client that reads nothing would hold the
	// session, its goroutines and what they buffer for good.
	timeout time.Duration

	holdBusy bool // swallow the "another connection" close frame
	busy     bool // it was swallowed
	// failed is set once a write failed. sockjs-go answers the same close
	// frame when an attach fails for any reason, a failed write of what
	// waits in its buffer among them: that one is not held back, so that
	// sockjs-go ends the session (its request ends with the frame unwritten
	// and the receiver still open) rather than the bridge trying again.
	failed bool
}

// busyFrame is the close frame sockjs-go answers a receiving request with
// while another one is attached to the session.
const busyFrame = `c[2010,"Another connection still open"]`

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.holdBusy && !c.failed && bytes.Equal(bytes.TrimRight(bytes.TrimPrefix(p, []byte("data: ")), "\r\n"), []byte(busyFrame)) {
		c.busy = true
		return len(p), nil
	}
	c.within()
	n, err := c.ResponseWriter.Write(p)
	if err != nil {
		c.failed = true
	}
	if err == nil {
		if k := countMessages(p); k > 0 {
			if t := c.h.tracker(c.id); t != nil {
				t.addWritten(k)
			}
		}
	}
	return n, err
}

// Flush implements http.Flusher, which sockjs-go requires.
func (c *countingWriter) Flush() {
	c.within()
	http.NewResponseController(c.ResponseWriter).Flush()
}

// within bounds the next write or flush by the write timeout. A write that
// times out fails, and so does every later one: sockjs-go's Send then
// returns the error, and the bridge ends the SockJS session, and with it
// the Tether session (1006), as when a client goes away. It is also called
// once sockjs-go is done, so that what net/http writes after the handler
// (the end of a chunked body) has a deadline of its own.
func (c *countingWriter) within() {
	httpx.AnswerWithin(c.ResponseWriter, c.timeout)
}

// Unwrap returns the ResponseWriter underneath, for http.ResponseController.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// countMessages returns how many messages a written frame holds: the
// length of the JSON array of an "a" frame, written as "a[...]\n" (xhr) or
// "data: a[...]\r\n\r\n" (eventsource, whose escaping touches only the
// inside of strings). Other frames hold none.
func countMessages(p []byte) int {
	p = bytes.TrimPrefix(p, []byte("data: "))
	if len(p) == 0 || p[0] != 'a' {
		return 0
	}
	var msgs []json.RawMessage
	if json.Unmarshal(bytes.TrimRight(p[1:], "\r\n"), &msgs) != nil {
		return 0
	}
	return len(msgs)
}
