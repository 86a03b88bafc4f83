package transport

import (
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Defaults shared by the streaming transports (sse, streaming).
const (
	// DefaultMaxStreamBytes is how many bytes a streaming response carries
	// before it ends, so that a reader that keeps what it has read (an
	// XMLHttpRequest's responseText) can let go of it. Tether's clients
	// read a fetch body, which keeps nothing, so the limit is large: each
	// new response costs a request (about 4 ms in Chromium on loopback),
	// and at 128 KiB that held a burst of 64-byte messages to about 2,000
	// per request.
	DefaultMaxStreamBytes = 1 << 20
	// DefaultPreludeBytes is the size of the padding that starts a
	// streaming response. 2 KiB is more than the first-chunk thresholds of
	// the browsers and buffering proxies that hold back small responses.
	DefaultPreludeBytes = 2 << 10
)

// AcksParam is the query parameter, with the value "1", by which an attach
// on a streaming transport says that its client acknowledges through send
// while it reads (PROTOCOL.md section 4.5): the response then has no byte
// limit.
const AcksParam = "acks"

// maxFlushBytes bounds the message bytes one batch of a stream carries, so
// that one flush stays small (MaxStreamBytes bounds the whole response).
const maxFlushBytes = 64 << 10

// tailFlushDelay is how soon a heartbeat follows the last batch of a burst.
// A proxy that buffers upstream reads (nginx with proxy_buffering on and
// X-Accel-Buffering ignored) passes a stream's first bytes at once but may
// hold the tail of a burst in a part-filled buffer until its next read from
// upstream: without this heartbeat, a whole heartbeat interval later. It
// costs one heartbeat per burst, none while messages keep flowing.
const tailFlushDelay = 100 * time.Millisecond

// StreamEncoder lays frames out in one streaming transport's format.
type StreamEncoder interface {
	// AppendBatch appends one batch to dst and returns the extended
	// slice: b's Messages, numbered b.First, b.First+1, ..., each from
	// the frames it shares with other sessions when it has them
	// (b.SharedFrames), then ctrl when it is not nil. ctrl is an encoded
	// control frame (a heartbeat or a close); b's own acknowledgement and
	// close are not written.
	AppendBatch(dst []byte, b *session.Batch, ctrl []byte) []byte
}

// Stream describes one streaming response for ServeStream. A transport
// builds one per request, so the encoder may hold per-response state such
// as a multipart boundary.
type Stream struct {
	// Name is the transport's name, reported by Session.Transport.
	Name string
	// ContentType is the response's Content-Type.
	ContentType string
	// Prelude is written first, at once, before the first heartbeat.
	Prelude []byte
	// Encoder writes each batch.
	Encoder StreamEncoder
	// Epilogue is written when the response ends on purpose: at
	// MaxStreamBytes, when superseded, or after the session's last frame.
	Epilogue []byte
	// MaxStreamBytes, the stream byte limit, is how many bytes of body
	// (prelude included) the response carries before it ends; the last
	// batch may go over, and a response always carries at least one batch
	// after the prelude. Zero means DefaultMaxStreamBytes. A request with
	// acks=1 (AcksParam) has no limit.
	MaxStreamBytes int
}

// ServeStream attaches a downstream connection for a.Session and serves it
// as one streaming response (a probe: see serveProbe): the prelude and a
// heartbeat at once, then
// every batch the session has, each flushed with a write deadline of
// a.Config.WriteTimeout, and a heartbeat whenever the connection's heartbeat interval
// passes with nothing to send. The response ends, with st.Epilogue, once it
// has carried st.MaxStreamBytes (never, when the request has acks=1: its
// client acknowledges as it reads, and the session's queue bounds what goes
// unacknowledged), when a newer connection supersedes it, or after
// the session's close frame; the client then attaches again with its
// received count and loses nothing. It returns when the response is over;
// an unknown or finished session answers 404.
func ServeStream(w http.ResponseWriter, r *http.Request, a *Attach, st *Stream) {
	if a.Probe {
		serveProbe(w, r, a, st)
		return
	}
	link, err := a.Session.Attach(session.AttachOptions{Transport: st.Name, Received: a.Received})
	if err != nil {
		httpx.AttachError(w, err)
		return
	}
	defer link.Detach()
	limit := st.MaxStreamBytes
	switch {
	case httpx.HasFlag(r, AcksParam):
		limit = math.MaxInt
	case limit <= 0:
		limit = DefaultMaxStreamBytes
	}
	sw, buf := startStream(w, a, st)
	defer sw.end()
	if sw.write(buf) != nil {
		return
	}
	var ctrl []byte
	// At least one batch after the prelude, even when the prelude alone
	// reaches the limit, so that every response makes progress.
	afterData := false
	for first := true; first || sw.written < limit; first = false {
		wait := a.HeartbeatInterval()
		if afterData {
			wait = min(wait, tailFlushDelay)
		}
		b, err := link.Pull(r.Context(), wait, min(maxFlushBytes, max(1, limit-sw.written)))
		if err != nil {
			if errors.Is(err, session.ErrSuperseded) || errors.Is(err, session.ErrFinished) {
				sw.write(st.Epilogue)
			}
			return
		}
		ctrl = ctrl[:0]
		switch {
		case b.Close != nil:
			ctrl = wire.AppendClose(ctrl, *b.Close)
		case len(b.Messages) == 0:
			// Empty, or only an acknowledgement (never due on a
			// downstream link): the interval passed.
			ctrl = wire.AppendHeartbeat(ctrl)
		}
		c := ctrl
		if len(c) == 0 {
			c = nil
		}
		buf = st.Encoder.AppendBatch(buf[:0], &b, c)
		if sw.write(buf) != nil {
			return
		}
		if b.Close != nil {
			break
		}
		afterData = len(b.Messages) > 0
	}
	sw.write(st.Epilogue)
}

// startStream writes the headers of a streaming response and returns its
// writer and the response's first flush: the prelude and a heartbeat.
func startStream(w http.ResponseWriter, a *Attach, st *Stream) (*streamWriter, []byte) {
	h := w.Header()
	httpx.SetNoCache(h)
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Content-Type", st.ContentType)
	w.WriteHeader(http.StatusOK)
	buf := append([]byte(nil), st.Prelude...)
	buf = st.Encoder.AppendBatch(buf, &session.Batch{}, wire.AppendHeartbeat(nil))
	return &streamWriter{w: w, rc: http.NewResponseController(w), timeout: a.Config.WriteTimeout}, buf
}

// probeHold bounds how long a probe's response stays open. It must outlast
// the client's wait for the probe's first bytes: a buffering proxy passes
// the response only once it ends, and a response that ended early would
// pass for a stream that is not held back.
const probeHold = 30 * time.Second

// serveProbe answers a probe (PROTOCOL.md section 10): the start of a
// streaming response, the prelude and a heartbeat, without attaching to the
// session, so that the session's messages are never held in a stream a
// proxy buffers. The response ends once the client goes away, or with
// st.Epilogue when the session ends or after probeHold. A probe of a
// finished session answers 404 like an attach.
func serveProbe(w http.ResponseWriter, r *http.Request, a *Attach, st *Stream) {
	if a.Session.Finished() {
		httpx.Error(w, http.StatusNotFound, httpx.MsgUnknownSession)
		return
	}
	sw, buf := startStream(w, a, st)
	defer sw.end()
	if sw.write(buf) != nil {
		return
	}
	t := time.NewTimer(probeHold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.Session.Context().Done():
	case <-r.Context().Done():
		return // the client went away: nothing to end
	}
	sw.write(st.Epilogue)
}

// streamWriter writes and flushes a streaming response, counting bytes.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	written int
	// deadlineMoved is when write last moved the write deadline, to
	// deadlineMoved + timeout + timeout/8.
	deadlineMoved time.Time
}

// end gives what net/http writes once the handler returns (the end of the
// chunked body) a write timeout of its own, of timeout exactly. The deadline of the last write
// may have passed while the stream was idle (a heartbeat interval is longer
// than the default write timeout), and the response would then end with its
// connection cut, not cleanly: a client reading it takes that for a network
// error, not for a response that ended on purpose (superseded, at a probe's
// hold, after the session's end, or with no epilogue to write).
func (sw *streamWriter) end() {
	if sw.timeout > 0 {
		sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	}
}

// write writes p and flushes it within the write timeout, and at most an
// eighth more: the deadline moves at most every eighth of the timeout, and
// then to the timeout and an eighth ahead, so that a stream of many small
// writes costs a timer operation every eighth of the timeout rather than
// one per write (each one may wake another thread of the runtime).
func (sw *streamWriter) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if now := time.Now(); sw.timeout > 0 && now.Sub(sw.deadlineMoved) >= sw.timeout/8 {
		err := sw.rc.SetWriteDeadline(now.Add(sw.timeout + sw.timeout/8))
		if err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		sw.deadlineMoved = now
	}
	n, err := sw.w.Write(p)
	sw.written += n
	if err != nil {
		return err
	}
	return sw.rc.Flush()
}
