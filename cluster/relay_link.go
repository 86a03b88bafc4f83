package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// remoteLink is a connection served here for a session held by another
// node: what the transport takes comes from the owner's Link, pulled over
// the bus with the session's own numbering, one pull in flight at a time.
// A transport that pulls (Pull) pulls through; one that is told
// (AttachOptions.Notify) is fed by a goroutine of the link's, its pump,
// which pulls the next batch once Collect has taken the last.
//
// A pull that fails (the bus lost the request or its reply, or is down)
// ends the link as superseded: the transport ends its connection, the
// client attaches again, and the owner replays what the lost reply held.
// Once the owner is judged gone, the link delivers the close frame
// `c4006 owner gone` and is over; on a durable node it ends as superseded
// instead, as when the owner's session lost its lease, so that the client
// attaches again and the session is taken over.
type remoteLink struct {
	e      *remoteEndpoint
	id     uint64 // the owner's id of its link
	notify func()
	done   chan struct{}
	ctx    context.Context // ends at Detach or when the link is over: stops the pump
	cancel context.CancelFunc

	mu       sync.Mutex
	over     error         // guarded by mu; ErrSuperseded or ErrFinished once the link is over
	detached bool          // guarded by mu
	held     session.Batch // guarded by mu; the pump's last batch, not all collected yet
	taken    chan struct{} // capacity 1: Collect took all of held

	msgs []wire.Message // Pull's, reused
}

// pumpWait is how long one pull of a pump waits on the owner for something
// to send. The transport sends its own heartbeats, so it only bounds the
// request.
const pumpWait = 20 * time.Second

func newRemoteLink(e *remoteEndpoint, id uint64, notify func()) *remoteLink {
	l := &remoteLink{e: e, id: id, notify: notify, done: make(chan struct{}), taken: make(chan struct{}, 1)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	e.p.addLink()
	if notify != nil && !e.n.goAsync(l.pump) {
		l.finish(session.ErrSuperseded)
	}
	return l
}

// Done implements session.Link.
func (l *remoteLink) Done() <-chan struct{} { return l.done }

// finish makes the link over with err, and tells a transport that is told.
func (l *remoteLink) finish(err error) {
	l.mu.Lock()
	first := l.over == nil
	if first {
		l.over = err
		close(l.done)
	}
	l.mu.Unlock()
	if first {
		l.cancel()
		if l.notify != nil {
			l.notify()
		}
	}
}

// pull asks the owner for one batch. The owner gone, it returns the close
// batch and errOwnerGone; the link is then over once that batch is taken.
func (l *remoteLink) pull(ctx context.Context, wait time.Duration, maxBytes int, msgs []wire.Message) (session.Batch, error) {
	maxBytes = max(1, min(maxBytes, l.e.n.maxBatch))
	data, err := l.e.n.call(ctx, l.e.p, l.pullRequest(wait, maxBytes), wait)
	if errors.Is(err, errOwnerGone) && l.e.n.durable != nil {
		// The session outlives its node: the connection ends, and the
		// client's next attach takes the session over.
		l.e.n.lookups.forget(l.e.id)
		return session.Batch{}, session.ErrSuperseded
	}
	if errors.Is(err, errOwnerGone) {
		l.e.end(ownerGone)
		return session.Batch{Close: &ownerGone}, err
	}
	if err != nil {
		return session.Batch{}, err
	}
	r, err := parseReply(callPull, data, msgs)
	if err != nil {
		l.e.n.malformedMessage("pull reply", err)
		return session.Batch{}, session.ErrSuperseded
	}
	switch r.result {
	case resultOK:
		return r.batch, nil
	case resultFinished:
		return session.Batch{}, session.ErrFinished
	case resultUnknown:
		if l.e.n.durable != nil {
			// Not there any more: it may have moved to another node.
			l.e.n.lookups.forget(l.e.id)
			return session.Batch{}, session.ErrSuperseded
		}
		return session.Batch{}, session.ErrFinished
	case resultUnavailable:
		l.e.n.lookups.forget(l.e.id)
	}
	// Superseded, a link the owner let go, or a pull in progress already.
	return session.Batch{}, session.ErrSuperseded
}

func (l *remoteLink) pullRequest(wait time.Duration, maxBytes int) []byte {
	b := appendHeader(make([]byte, 0, 96), callPull, l.e.n.id, l.e.id, l.e.token)
	b = appendUvarint(b, l.id)
	b = appendMillis(b, wait)
	return appendUvarint(b, uint64(maxBytes))
}

// overErr is the error a link's methods return once it ended because of
// err: ErrSuperseded or ErrFinished as the owner said; ErrSuperseded for
// a failed pull, whose connection must end so that the client attaches
// again and is replayed what the pull may have lost.
func overErr(err error) error {
	if errors.Is(err, session.ErrFinished) {
		return session.ErrFinished
	}
	return session.ErrSuperseded
}

// Pull implements session.Link.
func (l *remoteLink) Pull(ctx context.Context, wait time.Duration, maxBytes int) (session.Batch, error) {
	l.mu.Lock()
	over := l.over
	l.mu.Unlock()
	if over != nil {
		return session.Batch{}, over
	}
	b, err := l.pull(ctx, wait, maxBytes, l.msgs)
	l.msgs = b.Messages[:0]
	switch {
	case errors.Is(err, errOwnerGone):
		l.finish(session.ErrFinished)
		return b, nil
	case err != nil:
		// A reply in flight may hold messages the owner has handed out:
		// the link is over either way.
		l.finish(overErr(err))
		if ctx.Err() != nil {
			return session.Batch{}, ctx.Err()
		}
		return session.Batch{}, overErr(err)
	}
	return b, nil
}

// pump feeds a transport that is told: it pulls a batch, holds it for
// Collect, tells the transport, and pulls the next once Collect has taken
// it all.
func (l *remoteLink) pump() {
	for {
		b, err := l.pull(l.ctx, pumpWait, l.e.n.maxBatch, nil)
		gone := errors.Is(err, errOwnerGone)
		if err != nil && !gone {
			l.finish(overErr(err))
			return
		}
		if b.Empty() {
			continue
		}
		l.mu.Lock()
		l.held = b
		l.mu.Unlock()
		l.notify()
		if gone {
			return // Collect ends the link once it takes the close
		}
		select {
		case <-l.taken:
		case <-l.ctx.Done():
			return
		}
	}
}

// Collect implements session.Link: what the pump holds, within maxBytes.
func (l *remoteLink) Collect(maxBytes int) (session.Batch, error) {
	l.mu.Lock()
	b := l.held
	if b.Empty() {
		over := l.over
		l.mu.Unlock()
		return session.Batch{}, over
	}
	size := 0
	for k, m := range b.Messages {
		if k > 0 && size+len(m.Data)+session.MessageOverhead > maxBytes {
			// The rest, and the ack or close after them, next time.
			l.held.First += uint64(k)
			l.held.Messages = b.Messages[k:]
			l.mu.Unlock()
			return session.Batch{First: b.First, Messages: b.Messages[:k]}, nil
		}
		size += len(m.Data) + session.MessageOverhead
	}
	l.held = session.Batch{}
	l.mu.Unlock()
	if b.Close != nil {
		l.finish(session.ErrFinished)
	}
	select {
	case l.taken <- struct{}{}:
	default:
	}
	return b, nil
}

// Detach implements session.Link: the owner's link is detached too, by a
// request that does not hold up the transport. A detach the bus loses
// leaves the owner's link to its idle timeout (NodeOptions.LinkIdleTimeout).
func (l *remoteLink) Detach() {
	l.mu.Lock()
	if l.detached {
		l.mu.Unlock()
		return
	}
	l.detached = true
	l.mu.Unlock()
	l.finish(session.ErrSuperseded)
	l.e.p.removeLink()
	n := l.e.n
	if l.e.p.gone() {
		return
	}
	n.goAsync(func() {
		req := appendHeader(make([]byte, 0, 64), callDetach, n.id, l.e.id, l.e.token)
		ctx, cancel := context.WithTimeout(n.ctx, n.opts.RequestTimeout)
		defer cancel()
		n.bus.Request(ctx, l.e.p.subject, appendUvarint(req, l.id))
	})
}

// closeLink is the Link of an attach to a session that has ended with a
// close the client has yet to learn (its owner is gone): it delivers only
// that close frame, on every transport.
type closeLink struct {
	ce   wire.CloseError
	done chan struct{}

	mu     sync.Mutex
	sent   bool // guarded by mu
	closed bool // guarded by mu; done is closed
}

func newCloseLink(ce wire.CloseError) *closeLink {
	return &closeLink{ce: ce, done: make(chan struct{})}
}

// Pull implements session.Link: the close frame, then ErrFinished.
func (l *closeLink) Pull(context.Context, time.Duration, int) (session.Batch, error) {
	return l.Collect(0)
}

// Collect implements session.Link: the close frame, then ErrFinished.
func (l *closeLink) Collect(int) (session.Batch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent {
		return session.Batch{}, session.ErrFinished
	}
	l.sent = true
	ce := l.ce
	return session.Batch{Close: &ce}, nil
}

// Done implements session.Link: closed at Detach.
func (l *closeLink) Done() <-chan struct{} { return l.done }

// Detach implements session.Link.
func (l *closeLink) Detach() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
}
