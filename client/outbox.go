package client

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tetherkit/tether/wire"
)

// outbox numbers the messages the application sends and keeps each one
// until the server acknowledges it (PROTOCOL.md section 5.2). Message number
// k is the k-th message sent in the session, counting from 1.
//
// All methods are safe for concurrent use. Every change closes and replaces
// the changed channel, so waiters select on it and look again.
type outbox struct {
	limit int // bytes of unacknowledged payload above which push waits

	mu       sync.Mutex
	msgs     []wire.Message   // guarded by mu; msgs[i] is number acked+1+i
	acked    uint64           // guarded by mu; the server has every message up to this number
	bytes    int              // guarded by mu; payload bytes in msgs
	closeReq *wire.CloseError // guarded by mu; set by close, after which push fails
	changed  chan struct{}    // guarded by mu; closed and replaced on every change
	// closed is set with closeReq, for closing, which the reader asks of
	// every message: read without mu.
	closed atomic.Bool
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: limit, changed: make(chan struct{})}
}

// notifyLocked wakes every waiter. o.mu must be held.
func (o *outbox) notifyLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// push numbers m and queues it. It waits while the unacknowledged bytes are
// at the limit (a message is always accepted into an empty outbox), until
// ctx or stop is done. After close, it returns the close request.
func (o *outbox) push(ctx context.Context, stop <-chan struct{}, m wire.Message) error {
	for {
		o.mu.Lock()
		if o.closeReq != nil {
			ce := *o.closeReq
			o.mu.Unlock()
			return ce
		}
		if len(o.msgs) == 0 || o.bytes+len(m.Data) <= o.limit {
			o.msgs = append(o.msgs, m)
			o.bytes += len(m.Data)
			o.notifyLocked()
			o.mu.Unlock()
			return nil
		}
		wait := o.changed
		o.mu.Unlock()
		select {
		case <-wait:
		case <-stop:
			return errStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// reset drops every message and starts the numbering over, for a new
// session: messages the old session had not acknowledged are not sent into
// the new one. A close request stays.
func (o *outbox) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs, o.acked, o.bytes = nil, 0, 0
	o.notifyLocked()
}

// close records the close request: push fails from now on, and the
// transports send the close frame after every message queued before it.
// It reports false, changing nothing, when a close was already requested.
func (o *outbox) close(ce wire.CloseError) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeReq != nil {
		return false
	}
	o.closeReq = &ce
	o.closed.Store(true)
	o.notifyLocked()
	return true
}

// ack records that the server has every message up to number n and drops
// them. It fails for an n beyond the last message sent: the server cannot
// have it.
func (o *outbox) ack(n uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	last := o.acked + uint64(len(o.msgs))
	if n > last {
		return fmt.Errorf("server acknowledged %d messages, only %d sent", n, last)
	}
	if n <= o.acked {
		return nil
	}
	k := int(n - o.acked)
	for i := range k {
		o.bytes -= len(o.msgs[i].Data)
		o.msgs[i] = wire.Message{} // let the payload be collected
	}
	o.msgs = o.msgs[k:]
	o.acked = n
	o.notifyLocked()
	return nil
}

// window is a view of the outbox taken at one instant.
type window struct {
	first    uint64         // the number of msgs[0]
	msgs     []wire.Message // a copy of the slice; payloads are shared, never written
	rest     bool           // messages after msgs were left out by the byte bound
	closeReq *wire.CloseError
	changed  <-chan struct{} // closed at the next change after the view
}

// next returns the number of the first unacknowledged message, which is the
// seq of an attach or a send request.
func (o *outbox) next() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acked + 1
}

// view returns the queued messages numbered from first on, as many as fit in
// maxBytes of batch (at least one; maxBytes <= 0 means no bound). It fails
// when message first was already dropped by an acknowledgement.
func (o *outbox) view(first uint64, maxBytes int) (window, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := window{first: first, closeReq: o.closeReq, changed: o.changed}
	if first <= o.acked {
		return w, &droppedError{first: first, acked: o.acked}
	}
	i := first - o.acked - 1
	if i >= uint64(len(o.msgs)) {
		return w, nil
	}
	msgs := o.msgs[i:]
	if maxBytes > 0 {
		n, size := 0, 0
		for n < len(msgs) {
			size += batchFrameLen(msgs[n])
			if n > 0 && size > maxBytes {
				break
			}
			n++
		}
		w.rest = n < len(msgs)
		msgs = msgs[:n]
	}
	w.msgs = append([]wire.Message(nil), msgs...)
	return w, nil
}

// droppedError is view's error for a first message that an
// acknowledgement has dropped: the server has every message up to acked.
type droppedError struct{ first, acked uint64 }

func (e *droppedError) Error() string {
	return fmt.Sprintf("message %d was acknowledged and dropped", e.first)
}

// batchFrameLen is how many bytes m takes in a batch: length prefix, colon
// and frame.
func batchFrameLen(m wire.Message) int {
	n := wire.RawEncoding.FrameLen(m)
	return len(strconv.Itoa(n)) + 1 + n
}

// has reports whether message number n is queued, or a close was
// requested: whether a writer at n has something to do.
func (o *outbox) has(n uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return n <= o.acked+uint64(len(o.msgs)) || o.closeReq != nil
}

// closing reports whether Close was called or the session ended.
func (o *outbox) closing() bool { return o.closed.Load() }

// closeRequest returns the close request, and false when there is none.
func (o *outbox) closeRequest() (wire.CloseError, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeReq == nil {
		return wire.CloseError{}, false
	}
	return *o.closeReq, true
}
