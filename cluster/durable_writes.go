package cluster

import (
	"context"
	"fmt"
	"sync"

	"github.com/tetherkit/tether/session"
)

// The coalescing of a durable node's writes: on a store that implements
// StateBatchWriter, the journals' writes go through a stateWriter, whose
// flushers each send what waits in one WriteAll. A write that finds a
// flusher idle goes at once, alone; those that come while every flusher
// waits for the store go together in the next WriteAll, so that a burst
// of many sessions' writes costs few round trips and no write waits for a
// timer.

// Bounds of the coalescing: how many WriteAlls may be in flight at once,
// and how many writes one carries at most.
const (
	writeFlushers = 4
	maxWriteBatch = 256
)

// stateWriter coalesces the writes of a durable node's sessions.
type stateWriter struct {
	store StateBatchWriter
	n     *Node
	wake  chan struct{} // a flusher has something to take; capacity 1

	mu     sync.Mutex
	queue  []*pendingWrite // guarded by mu: writes not taken by a flusher yet
	closed bool            // guarded by mu: the node is closing; no write is taken
}

// pendingWrite is one write waiting in a stateWriter.
type pendingWrite struct {
	w     StateWrite
	taken bool          // guarded by the writer's mu: a flusher sends it
	gone  bool          // guarded by the writer's mu: its caller gave up before it was taken
	err   error         // set before done is closed
	done  chan struct{} // closed once the write is stored or failed
}

// newStateWriter starts the flushers of a node whose store is store; they
// end with the node's context.
func newStateWriter(n *Node, store StateBatchWriter) *stateWriter {
	w := &stateWriter{store: store, n: n, wake: make(chan struct{}, 1)}
	for range writeFlushers {
		n.goAsync(w.flush)
	}
	return w
}

// write applies e with l through a WriteAll, and returns its error. It
// waits for the write once a flusher has taken it, even if ctx ends (the
// flusher uses e until the store answers); until then, the end of ctx
// withdraws it.
func (w *stateWriter) write(ctx context.Context, l Lease, e *session.Entry) error {
	p := &pendingWrite{w: StateWrite{Lease: l, Entry: e}, done: make(chan struct{})}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return fmt.Errorf("%w: the node is closed", ErrStateUnavailable)
	}
	w.queue = append(w.queue, p)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // a flusher will take it with the others
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
	}
	w.mu.Lock()
	if !p.taken {
		p.gone = true
		w.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrStateUnavailable, ctx.Err())
	}
	w.mu.Unlock()
	<-p.done
	return p.err
}

// flush is one flusher: it sends what waits, in one WriteAll at a time,
// until the node's context ends; then it fails what still waits.
func (w *stateWriter) flush() {
	ctx := w.n.ctx
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.closed = true
			queue := w.queue
			w.queue = nil
			w.mu.Unlock()
			fail(queue)
			return
		case <-w.wake:
		}
		for {
			batch := w.take()
			if len(batch) == 0 {
				break
			}
			if ctx.Err() != nil {
				// The node is closing: what was not sent is not.
				fail(batch)
				continue
			}
			w.send(ctx, batch)
		}
	}
}

// fail tells each write of batch that the node closed before sending it.
func fail(batch []*pendingWrite) {
	for _, p := range batch {
		p.err = fmt.Errorf("%w: the node is closed", ErrStateUnavailable)
		close(p.done)
	}
}

// take returns up to maxWriteBatch of the writes waiting, those whose
// callers gave up left out, marked taken.
func (w *stateWriter) take() []*pendingWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	var batch []*pendingWrite
	k := 0
	for ; k < len(w.queue) && len(batch) < maxWriteBatch; k++ {
		if p := w.queue[k]; !p.gone {
			p.taken = true
			batch = append(batch, p)
		}
	}
	w.queue = w.queue[k:]
	if len(w.queue) > 0 {
		// More than one batch waits: another flusher may take the rest.
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return batch
}

// send writes batch in one WriteAll, bounded by the node's RequestTimeout,
// and tells each write its result.
func (w *stateWriter) send(ctx context.Context, batch []*pendingWrite) {
	writes := make([]StateWrite, len(batch))
	for i, p := range batch {
		writes[i] = p.w
	}
	ctx, cancel := context.WithTimeout(ctx, w.n.opts.RequestTimeout)
	errs := w.store.WriteAll(ctx, writes)
	cancel()
	for i, p := range batch {
		if i < len(errs) {
			p.err = errs[i]
		} else {
			p.err = fmt.Errorf("%w: no answer for the write", ErrStateUnavailable)
		}
		close(p.done)
	}
}
