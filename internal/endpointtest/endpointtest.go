// Package endpointtest is a fake session.Endpoint for testing transports
// without a session behind them: it records the calls a transport makes, in
// order, answers Attach and Deliver as the test sets, and hands the
// attached Link the batches the test pushes.
package endpointtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Endpoint is a fake session.Endpoint. Set AttachErr and DeliverErr before
// the transport uses it; Push, End and Calls may be called at any time from
// any goroutine.
type Endpoint struct {
	// AttachErr, if set, is what Attach returns.
	AttachErr error
	// DeliverErr, if set, is what Deliver returns (after recording).
	DeliverErr error

	ctx      context.Context
	cancel   context.CancelFunc
	detached chan struct{} // closed by the first Detach

	mu      sync.Mutex
	calls   []string        // guarded by mu
	batches []session.Batch // pushed, not yet taken; guarded by mu
	link    *Link           // attached now; guarded by mu
	ended   bool            // guarded by mu
}

// New returns an open fake endpoint. End it (or let the test's cleanup)
// so that its context is released.
func New() *Endpoint {
	e := &Endpoint{detached: make(chan struct{})}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Calls returns the calls recorded so far, as "Name(args)", joined by "; ".
func (e *Endpoint) Calls() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.calls, "; ")
}

func (e *Endpoint) record(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, fmt.Sprintf(format, args...))
}

// Detached is closed once a Link has been detached: the transport is done
// with its connection.
func (e *Endpoint) Detached() <-chan struct{} { return e.detached }

// Push queues b for the attached Link (or the next one) and tells it, as a
// session does when it has something to send. A Link takes what is queued
// on its first Pull or Collect, as a session's does.
func (e *Endpoint) Push(b session.Batch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batches = append(e.batches, b)
	if e.link != nil {
		e.link.notify()
	}
}

// End ends the fake session: its context is canceled and the attached Link
// is over (ErrFinished).
func (e *Endpoint) End() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return
	}
	e.ended = true
	e.cancel()
	if e.link != nil {
		e.link.end()
	}
}

// ID implements session.Endpoint.
func (e *Endpoint) ID() string { return "fake" }

// Context implements session.Endpoint.
func (e *Endpoint) Context() context.Context { return e.ctx }

// Err implements session.Endpoint: nil until End, then a 1000 CloseError.
func (e *Endpoint) Err() error {
	if e.Finished() {
		return wire.CloseError{Code: wire.StatusNormalClosure}
	}
	return nil
}

// Finished implements session.Endpoint.
func (e *Endpoint) Finished() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ended
}

// Attach implements session.Endpoint: it records the transport and the
// received count, and returns AttachErr or a Link that supersedes the one
// attached before.
func (e *Endpoint) Attach(opts session.AttachOptions) (session.Link, error) {
	e.record("Attach(%s, %d)", opts.Transport, opts.Received)
	if e.AttachErr != nil {
		return nil, e.AttachErr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return nil, session.ErrUnknownSession
	}
	l := &Link{e: e, notifyFn: opts.Notify, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if e.link != nil {
		e.link.end()
	}
	e.link = l
	return l, nil
}

// Deliver implements session.Endpoint: it records seq and the messages'
// data, and returns DeliverErr.
func (e *Endpoint) Deliver(ctx context.Context, seq uint64, msgs []wire.Message) error {
	data := make([]string, len(msgs))
	for i, m := range msgs {
		data[i] = string(m.Data)
	}
	e.record("Deliver(%d, %s)", seq, strings.Join(data, ","))
	return e.DeliverErr
}

// Acknowledge implements session.Endpoint.
func (e *Endpoint) Acknowledge(received uint64) error {
	e.record("Acknowledge(%d)", received)
	return nil
}

// Fault implements session.Endpoint.
func (e *Endpoint) Fault(ce wire.CloseError) { e.record("Fault(%d)", ce.Code) }

// CloseFromClient implements session.Endpoint.
func (e *Endpoint) CloseFromClient(ce wire.CloseError) {
	e.record("CloseFromClient(%d, %s)", ce.Code, ce.Reason)
}

// Link is the fake's session.Link: it hands out the pushed batches, one
// per Pull or Collect.
type Link struct {
	e        *Endpoint
	notifyFn func()
	wake     chan struct{} // capacity 1
	done     chan struct{}
	over     bool // done is closed; guarded by e.mu
}

// notify and end are called with e.mu held.
func (l *Link) notify() {
	if l.notifyFn != nil {
		l.notifyFn()
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Link) end() {
	if !l.over {
		l.over = true
		close(l.done)
		if l.notifyFn != nil {
			l.notifyFn()
		}
	}
}

// take returns the next batch, or ok false. Called with e.mu held.
func (l *Link) take() (b session.Batch, ok bool, err error) {
	if l.over {
		if l.e.ended {
			return session.Batch{}, false, session.ErrFinished
		}
		return session.Batch{}, false, session.ErrSuperseded
	}
	if len(l.e.batches) == 0 {
		return session.Batch{}, false, nil
	}
	b = l.e.batches[0]
	l.e.batches = l.e.batches[1:]
	return b, true, nil
}

// Pull implements session.Link.
func (l *Link) Pull(ctx context.Context, wait time.Duration, maxBytes int) (session.Batch, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		l.e.mu.Lock()
		b, ok, err := l.take()
		l.e.mu.Unlock()
		if ok || err != nil {
			return b, err
		}
		select {
		case <-l.wake:
		case <-l.done:
		case <-ctx.Done():
			return session.Batch{}, ctx.Err()
		case <-t.C:
			return session.Batch{}, nil
		}
	}
}

// Collect implements session.Link.
func (l *Link) Collect(maxBytes int) (session.Batch, error) {
	l.e.mu.Lock()
	defer l.e.mu.Unlock()
	b, _, err := l.take()
	return b, err
}

// Done implements session.Link.
func (l *Link) Done() <-chan struct{} { return l.done }

// Detach implements session.Link: it records the call and ends the Link.
func (l *Link) Detach() {
	l.e.record("Detach")
	l.e.mu.Lock()
	defer l.e.mu.Unlock()
	l.end()
	if l.e.link == l {
		l.e.link = nil
	}
	select {
	case <-l.e.detached:
	default:
		close(l.e.detached)
	}
}

var (
	_ session.Endpoint = (*Endpoint)(nil)
	_ session.Link     = (*Link)(nil)
)
