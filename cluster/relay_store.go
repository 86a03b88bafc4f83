package cluster

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// ownerGone is the close a session whose owner is gone ends with, as its
// client sees it.
var ownerGone = wire.CloseError{Code: wire.StatusOwnerGone, Reason: "owner gone"}

// errOwnerGoneUnreachable is what a relayed call returns once the owner is
// gone: both errOwnerGone and session.ErrUnreachable.
var errOwnerGoneUnreachable = fmt.Errorf("%w: %w", session.ErrUnreachable, errOwnerGone)

// sessionEnded is what a relayed Deliver returns once the owner no longer
// knows the session: it ended meanwhile. It is never sent to a client.
var sessionEnded = wire.CloseError{Code: wire.StatusAbnormalClosure, Reason: "session ended"}

// store is the Store of a node: the sessions this node holds, in a
// session.MemoryStore, and for every other session id an Endpoint that
// relays to the node the id names.
type store struct {
	n     *Node
	local *session.MemoryStore
}

var _ session.Store = (*store)(nil)

// Add implements session.Store.
func (st *store) Add(s *session.Local) error {
	if err := st.local.Add(s); err != nil {
		return err
	}
	if d := st.n.durable; d != nil {
		d.added(s)
	}
	return nil
}

// Remove implements session.Store. On a durable node, the session's state
// is deleted unless it moved to another node.
func (st *store) Remove(s *session.Local) {
	st.local.Remove(s)
	if d := st.n.durable; d != nil {
		d.removed(s)
	}
}

// Len implements session.Store: the sessions this node holds.
func (st *store) Len() int { return st.local.Len() }

// Sessions implements session.Store: the sessions this node holds.
func (st *store) Sessions() []*session.Local { return st.local.Sessions() }

// Lookup implements session.Store. A session this node holds, or an id
// that names no node, is looked up here. For a session of another node, the
// owner checks the token (one request); Lookup then returns an Endpoint
// that relays each call to it, or ErrUnknownSession as the owner says.
// When the owner is gone (no handler for its subject, for
// NodeOptions.OwnerGoneAfter), it returns an Endpoint of a session that
// ended with StatusOwnerGone: an attach is served the close frame
// `c4006 owner gone`, and a send answers 503 (see remoteEndpoint.Deliver).
// When the bus fails, it returns an error wrapping session.ErrUnreachable.
//
// On a durable node (NodeOptions.State), the sessions held here may carry
// the id of another node (they were taken over), and a session whose
// owner is gone, or that its node does not hold, is looked up in the state
// (durable.takeOver): taken over here, relayed to the node that took it
// over, or, while its gone owner's lease has not lapsed, an error wrapping
// session.ErrUnreachable (503: the client tries again).
func (st *store) Lookup(id, token string) (session.Endpoint, error) {
	n := st.n
	d := n.durable
	owner, ok := OwnerOf(id)
	if !ok || owner == n.id || d != nil {
		ep, err := st.local.Lookup(id, token)
		if err == nil || !ok || d == nil {
			return ep, err
		}
	}
	if len(id) > maxIDBytes || len(token) > maxTokenBytes {
		return nil, session.ErrUnknownSession
	}
	if holder, ok := n.lookups.get(id, token); ok {
		return &remoteEndpoint{n: n, p: n.peer(holder), id: id, token: token}, nil
	}
	if owner == n.id {
		// Durable, and not held here: taken over by another node, or
		// ended.
		return d.takeOver(id, token, false)
	}
	p := n.peer(owner)
	if p.judgedGone() {
		if d != nil {
			return d.takeOver(id, token, true)
		}
		return goneEndpoint(n, id, ownerGone), nil
	}
	ep, err := n.askHolder(p, id, token)
	switch {
	case errors.Is(err, errOwnerGone) && d != nil:
		return d.takeOver(id, token, true)
	case errors.Is(err, errOwnerGone):
		return goneEndpoint(n, id, ownerGone), nil
	case err != nil:
		return nil, err
	case ep != nil:
		return ep, nil
	case d != nil:
		// Its node does not hold it: it may have been taken over.
		return d.takeOver(id, token, false)
	}
	return nil, session.ErrUnknownSession
}

// askHolder asks node p whether it holds session id with token (one
// request: p checks the token), and returns the Endpoint that relays to
// it if it does, nil if it does not.
func (n *Node) askHolder(p *peer, id, token string) (*remoteEndpoint, error) {
	data, err := n.call(n.ctx, p, appendHeader(nil, callLookup, n.id, id, token), 0)
	if err != nil {
		return nil, err
	}
	r, err := parseReply(callLookup, data, nil)
	switch {
	case err != nil:
		n.malformedMessage("lookup reply", err)
		return nil, fmt.Errorf("%w: %w", session.ErrUnreachable, err)
	case r.result == resultOK:
		n.lookups.add(id, token, p.id)
		return &remoteEndpoint{n: n, p: p, id: id, token: token}, nil
	}
	return nil, nil
}

// lookupTTL is how long a node takes an owner's word that a session exists
// and its token matches, so that the requests of a session that come one
// after another (a send, a poll) cost no lookup each. It trusts nothing
// more: every call still carries the token, which the owner checks, so a
// session that ended meanwhile is refused by the call itself.
const lookupTTL = 2 * time.Second

// maxLookups bounds the sessions a lookupCache holds; when full, it
// starts over empty.
const maxLookups = 1 << 14

// lookupCache holds the sessions of other nodes whose holder said lately
// that their token matches, and which node that is: the one the id names,
// or on a durable node the one that took the session over.
type lookupCache struct {
	mu sync.Mutex
	m  map[string]cachedLookup // by session id; guarded by mu
}

type cachedLookup struct {
	token  string
	holder string // the id of the node that holds the session
	until  time.Time
}

// get returns the node that said within lookupTTL that it holds session id
// with token.
func (c *lookupCache) get(id, token string) (holder string, ok bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !time.Now().Before(e.until) || subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
		return "", false
	}
	return e.holder, true
}

func (c *lookupCache) add(id, token, holder string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxLookups {
		c.m = make(map[string]cachedLookup)
	}
	c.m[id] = cachedLookup{token: token, holder: holder, until: time.Now().Add(lookupTTL)}
}

// forget drops session id: a call found it over.
func (c *lookupCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// remoteEndpoint is a session held by another node, as the transports of
// this one see it: each call is a request to the owner, which checks the
// session's token every time.
type remoteEndpoint struct {
	n         *Node
	p         *peer
	id, token string
	closeOnly bool // a goneEndpoint: it only gives its close frame
	// inBand is set once a connection that carries acknowledgements (a
	// WebSocket, AttachOptions.AcksInBand) attached through this
	// Endpoint, which serves that connection alone: its client learns
	// what the owner accepted from them, so its deliveries need not wait
	// for the owner's journal.
	inBand atomic.Bool

	mu     sync.Mutex
	ended  *wire.CloseError   // guarded by mu; set once a call found the session over
	ctx    context.Context    // guarded by mu; made by the first Context call
	cancel context.CancelFunc // guarded by mu
}

var _ session.Endpoint = (*remoteEndpoint)(nil)

// ID implements session.Endpoint.
func (e *remoteEndpoint) ID() string { return e.id }

// Context implements session.Endpoint: it ends once a call has found the
// session over.
func (e *remoteEndpoint) Context() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil {
		e.ctx, e.cancel = context.WithCancel(context.Background())
		if e.ended != nil {
			e.cancel()
		}
	}
	return e.ctx
}

// Err implements session.Endpoint: the close a call found, or nil.
func (e *remoteEndpoint) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended == nil {
		return nil
	}
	return *e.ended
}

// Finished implements session.Endpoint: whether a call found the session
// over. A session whose owner is gone is not finished in this sense: a
// connection may still attach, to be given the close frame (as to a
// session held here that was aborted), and a probe of it is answered as
// for a live one rather than 404, which a client would take for an
// unknown session.
func (e *remoteEndpoint) Finished() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ended != nil && e.ended.Code != wire.StatusOwnerGone && !e.closeOnly
}

// end records that the session is over.
func (e *remoteEndpoint) end(ce wire.CloseError) {
	if e.p != nil {
		e.n.lookups.forget(e.id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended == nil {
		e.ended = &ce
		if e.cancel != nil {
			e.cancel()
		}
	}
}

// request sends a request of kind, with body appended by fill, and parses
// the reply. wait is how long the owner may take before it answers.
func (e *remoteEndpoint) request(ctx context.Context, kind byte, wait time.Duration, fill func([]byte) []byte) (reply, error) {
	if e.p == nil { // goneEndpoint
		return reply{}, errOwnerGoneUnreachable
	}
	req := appendHeader(make([]byte, 0, 96), kind, e.n.id, e.id, e.token)
	if fill != nil {
		req = fill(req)
	}
	data, err := e.n.call(ctx, e.p, req, wait)
	for lost := 1; lost < maxLostReplies && lostReply(ctx, err) && (kind == callDeliver || kind == callDeliverInBand || kind == callAcknowledge); lost++ {
		// Sent again: the owner drops what it has already (numbering),
		// and an acknowledgement states a count.
		data, err = e.n.call(ctx, e.p, req, wait)
	}
	durable := e.n.durable != nil
	if errors.Is(err, errOwnerGone) {
		if durable {
			// The session outlives its node: the client comes back,
			// and the next lookup takes it over.
			e.n.lookups.forget(e.id)
			return reply{}, errMoved
		}
		e.end(ownerGone)
		return reply{}, errOwnerGoneUnreachable
	}
	if err != nil {
		return reply{}, err
	}
	r, err := parseReply(kind, data, nil)
	if err != nil {
		e.n.malformedMessage("reply", err)
		return reply{}, fmt.Errorf("%w: %w", session.ErrUnreachable, err)
	}
	switch {
	case r.result == resultUnavailable:
		e.n.lookups.forget(e.id)
		return reply{}, errMoved
	case r.result == resultUnknown && durable:
		// Not there: it may have moved to another node, which the next
		// lookup finds in the state; an ended session is unknown then.
		e.n.lookups.forget(e.id)
		return reply{}, errMoved
	case r.result == resultUnknown:
		e.end(sessionEnded)
	}
	return r, nil
}

// maxLostReplies is how many replies in a row a delivery or an
// acknowledgement may lose before it fails: each is sent again, which
// numbering makes harmless, so that a reply the bus loses costs a request,
// not the client's connection.
const maxLostReplies = 3

// lostReply reports whether err says that a request's reply did not come
// in time (lost, as an at-most-once bus may) while ctx goes on.
func lostReply(ctx context.Context, err error) bool {
	return errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
}

// Attach implements session.Endpoint. Once the owner is gone, it returns a
// Link that delivers only the close frame `c4006 owner gone`.
func (e *remoteEndpoint) Attach(opts session.AttachOptions) (session.Link, error) {
	r, err := e.request(e.n.ctx, callAttach, 0, func(b []byte) []byte {
		b = appendString(b, opts.Transport)
		b = appendUvarint(b, opts.Received)
		if opts.AcksInBand {
			return append(b, 1)
		}
		return append(b, 0)
	})
	switch {
	case e.p == nil: // goneEndpoint
		return newCloseLink(*e.ended), nil
	case errors.Is(err, errOwnerGone):
		return newCloseLink(ownerGone), nil
	case err != nil:
		return nil, err
	case r.result == resultOK:
		if opts.AcksInBand {
			e.inBand.Store(true)
		}
		return newRemoteLink(e, r.link, opts.Notify), nil
	case r.result == resultStale:
		return nil, session.ErrStaleAttach
	case r.result == resultUnknown:
		return nil, session.ErrUnknownSession
	}
	return nil, fmt.Errorf("%w: unexpected attach result %d", session.ErrUnreachable, r.result)
}

// deliverWait bounds how long one relayed delivery waits on the owner for
// room in the session's inbound queue before it is sent again.
const deliverWait = 5 * time.Second

// Deliver implements session.Endpoint: the messages go to the owner in
// requests that each fit the bus's payload limit, and Deliver returns once
// the owner's Deliver has returned for the last one. A request answered
// busy (the session's inbound queue stayed full) is sent again until ctx
// ends; numbering makes that harmless. Deliver returns the session's
// CloseError once it has closed, session.ErrSequenceGap as the owner's
// Deliver does, and an error wrapping session.ErrUnreachable when the bus
// fails or the owner is gone: a send then answers 503, and the client's
// connection, not the send, tells it that the session is over (the close
// frame `c4006 owner gone`), so that a send that meets the verdict before
// the connection does never ends the session as unknown.
func (e *remoteEndpoint) Deliver(ctx context.Context, seq uint64, msgs []wire.Message) error {
	for len(msgs) > 0 {
		room := e.n.maxBatch
		k := 0
		for k < len(msgs) && (k == 0 || room >= messageRoom+len(msgs[k].Data)) {
			room -= messageRoom + len(msgs[k].Data)
			k++
		}
		chunk := msgs[:k]
		for {
			wait := deliverWait
			if deadline, ok := ctx.Deadline(); ok {
				wait = min(wait, time.Until(deadline))
			}
			kind := callDeliver
			if e.inBand.Load() {
				kind = callDeliverInBand
			}
			r, err := e.request(ctx, kind, wait, func(b []byte) []byte {
				b = appendUvarint(b, seq)
				b = appendMillis(b, wait)
				b = appendUvarint(b, uint64(len(chunk)))
				for _, m := range chunk {
					b = appendMessage(b, m)
				}
				return b
			})
			switch {
			case err != nil:
				return err
			case r.result == resultBusy:
				if err := ctx.Err(); err != nil {
					return err
				}
				continue
			case r.result == resultGap:
				return session.ErrSequenceGap
			case r.result == resultClosed:
				e.end(r.close)
				return r.close
			case r.result == resultUnknown:
				return sessionEnded
			case r.result != resultOK:
				return fmt.Errorf("%w: unexpected deliver result %d", session.ErrUnreachable, r.result)
			}
			break
		}
		seq += uint64(k)
		msgs = msgs[k:]
	}
	return nil
}

// Acknowledge implements session.Endpoint. An acknowledgement for a
// session that has ended changes nothing and returns nil, as one for a
// session held here that ended; once the owner is gone it returns an error
// wrapping session.ErrUnreachable, as Deliver does.
func (e *remoteEndpoint) Acknowledge(received uint64) error {
	r, err := e.request(e.n.ctx, callAcknowledge, 0, func(b []byte) []byte { return appendUvarint(b, received) })
	switch {
	case err != nil:
		return err
	case r.result == resultBadAck:
		return session.ErrBadAck
	}
	return nil
}

// Fault implements session.Endpoint.
func (e *remoteEndpoint) Fault(ce wire.CloseError) { e.closeCall(callFault, ce) }

// CloseFromClient implements session.Endpoint.
func (e *remoteEndpoint) CloseFromClient(ce wire.CloseError) { e.closeCall(callCloseFromClient, ce) }

// closeCall relays a Fault or CloseFromClient. A call lost on the bus
// leaves the session to its owner's timers, as a client that vanished
// does.
func (e *remoteEndpoint) closeCall(kind byte, ce wire.CloseError) {
	if e.p == nil {
		return
	}
	if _, err := e.request(e.n.ctx, kind, 0, func(b []byte) []byte { return appendClose(b, ce) }); err != nil && !errors.Is(err, errOwnerGone) {
		e.n.log.Debug("tether: relayed close failed", "session", e.id, "err", err)
	}
}

// goneEndpoint returns the Endpoint of session id that ended here with ce:
// its owner is gone (StatusOwnerGone), or its stored state could not be
// read (stateUnreadable). Its Attach returns a Link that delivers only
// that close frame, so that the client learns it on every transport;
// Deliver and Acknowledge return an error wrapping session.ErrUnreachable
// (a send answers 503), and Fault and CloseFromClient do nothing.
func goneEndpoint(n *Node, id string, ce wire.CloseError) *remoteEndpoint {
	e := &remoteEndpoint{n: n, id: id, closeOnly: true}
	e.end(ce)
	return e
}
