package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The owner's side of the relay: the requests other nodes send on this
// node's subject for the sessions it holds. Every request names the session
// and its token, checked each time against the sessions this node holds: a
// node trusts nothing the bus says about who may do what.

// ownerLink is a connection of a session held here that another node
// serves: the Link it pulls from through the bus.
type ownerLink struct {
	link      session.Link
	sessionID string

	pull sync.Mutex // held by the pull in progress: one at a time

	// Guarded by the node's linksMu.
	pulling  bool
	lastPull time.Time // when the last pull ended, or the link was attached
}

// replyMargin is how long before the requester's deadline the owner
// answers a request whose wait would run up to it: a reply made after the
// deadline is lost.
const replyMargin = 100 * time.Millisecond

// handle answers one relay request.
func (n *Node) handle(ctx context.Context, data []byte) []byte {
	q, err := parseRequest(data)
	if err != nil {
		n.malformedMessage("request", err)
		return result(resultMalformed)
	}
	if q.kind == callPing {
		return result(resultOK)
	}
	local := n.localStore()
	if local == nil {
		return result(resultUnknown)
	}
	ep, err := local.Lookup(q.id, q.token)
	if err != nil {
		return result(resultUnknown)
	}
	switch q.kind {
	case callLookup:
		return result(resultOK)
	case callAttach:
		return n.attachRelayed(ep, &q)
	case callPull:
		return n.pullRelayed(ctx, &q)
	case callDetach:
		n.detachRelayed(q.id, q.link)
		return result(resultOK)
	case callDeliver:
		return deliverRelayed(ctx, ep, &q)
	case callDeliverInBand:
		return deliverRelayed(session.AcknowledgedInBand(ctx), ep, &q)
	case callAcknowledge:
		err := ep.Acknowledge(q.received)
		switch {
		case errors.Is(err, session.ErrUnreachable):
			return result(resultUnavailable)
		case err != nil:
			return result(resultBadAck)
		}
		return result(resultOK)
	case callFault:
		ep.Fault(q.close)
		return result(resultOK)
	default: // callCloseFromClient
		ep.CloseFromClient(q.close)
		return result(resultOK)
	}
}

func result(r byte) []byte { return []byte{relayVersion, r} }

// attachRelayed attaches a connection that another node serves.
func (n *Node) attachRelayed(ep session.Endpoint, q *request) []byte {
	link, err := ep.Attach(session.AttachOptions{Transport: q.transport, Received: q.received, AcksInBand: q.acksInBand})
	switch {
	case errors.Is(err, session.ErrStaleAttach):
		return result(resultStale)
	case errors.Is(err, session.ErrUnreachable):
		return result(resultUnavailable)
	case err != nil:
		return result(resultUnknown)
	}
	n.linksMu.Lock()
	n.nextLink++
	id := n.nextLink
	n.links[id] = &ownerLink{link: link, sessionID: ep.ID(), lastPull: time.Now()}
	n.linksMu.Unlock()
	if n.ctx.Err() != nil {
		// Attached while the node closed, after its links were detached.
		n.detachRelayed(ep.ID(), id)
	}
	return binary.AppendUvarint(result(resultOK), id)
}

// pullRelayed takes what a relayed link has to send, waiting as the
// request says, within the requester's deadline.
func (n *Node) pullRelayed(ctx context.Context, q *request) []byte {
	n.linksMu.Lock()
	ol := n.links[q.link]
	n.linksMu.Unlock()
	if ol == nil || ol.sessionID != q.id {
		// Detached (by its node, or as idle), or never made.
		return result(resultSuperseded)
	}
	if !ol.pull.TryLock() {
		return result(resultBusy)
	}
	defer ol.pull.Unlock()
	n.linksMu.Lock()
	ol.pulling = true
	n.linksMu.Unlock()
	wait := q.wait
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline)-replyMargin)
	}
	b, err := ol.link.Pull(ctx, max(wait, 0), max(1, min(q.maxBytes, n.maxBatch)))
	n.linksMu.Lock()
	ol.pulling, ol.lastPull = false, time.Now()
	n.linksMu.Unlock()
	switch {
	case errors.Is(err, session.ErrSuperseded):
		return result(resultSuperseded)
	case errors.Is(err, session.ErrFinished):
		return result(resultFinished)
	case errors.Is(err, session.ErrUnreachable):
		// The session lost its lease: the connection ends, and its
		// client comes back to the new owner.
		return result(resultUnavailable)
	case err != nil: // the requester's deadline passed: nobody reads the reply
		return result(resultBusy)
	}
	size := 2 + relayHeaderRoom
	for _, m := range b.Messages {
		size += messageRoom + len(m.Data)
	}
	return appendBatch(append(make([]byte, 0, size), relayVersion, resultOK), &b)
}

// detachRelayed detaches a relayed link of session id.
func (n *Node) detachRelayed(id string, link uint64) {
	n.linksMu.Lock()
	ol := n.links[link]
	if ol == nil || ol.sessionID != id {
		n.linksMu.Unlock()
		return
	}
	delete(n.links, link)
	n.linksMu.Unlock()
	ol.link.Detach()
}

// deliverRelayed hands client messages that another node received to the
// session, waiting for room as the request says.
func deliverRelayed(ctx context.Context, ep session.Endpoint, q *request) []byte {
	wait := q.wait
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline)-replyMargin)
	}
	dctx, cancel := context.WithTimeout(ctx, max(wait, 0))
	defer cancel()
	// The session keeps the messages' data; the request's bytes are the
	// bus's. One copy per message, of its own size, so that a message
	// queued for the application holds no more than it counts for.
	for i := range q.msgs {
		if len(q.msgs[i].Data) == 0 {
			q.msgs[i].Data = nil
			continue
		}
		q.msgs[i].Data = append([]byte(nil), q.msgs[i].Data...)
	}
	err := ep.Deliver(dctx, q.seq, q.msgs)
	var ce wire.CloseError
	switch {
	case err == nil:
		return result(resultOK)
	case errors.Is(err, session.ErrSequenceGap):
		return result(resultGap)
	case errors.Is(err, session.ErrUnreachable):
		return result(resultUnavailable)
	case errors.As(err, &ce):
		return appendClose(result(resultClosed), ce)
	default: // the wait passed with the inbound queue full
		return result(resultBusy)
	}
}

// reapLinks detaches, every LinkIdleTimeout/4, the relayed links that no
// pull has taken from for LinkIdleTimeout: the node that served them is
// gone, or lost their detach. A detached link starts the session's resume
// window, as when a connection served here ends.
func (n *Node) reapLinks() {
	t := time.NewTicker(n.opts.LinkIdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		var idle []*ownerLink
		n.linksMu.Lock()
		for id, ol := range n.links {
			if !ol.pulling && time.Since(ol.lastPull) > n.opts.LinkIdleTimeout {
				delete(n.links, id)
				idle = append(idle, ol)
			}
		}
		n.linksMu.Unlock()
		for _, ol := range idle {
			ol.link.Detach()
		}
	}
}

// detachAll detaches every relayed link: the node is closing.
func (n *Node) detachAll() {
	n.linksMu.Lock()
	all := n.links
	n.links = make(map[uint64]*ownerLink)
	n.linksMu.Unlock()
	for _, ol := range all {
		ol.link.Detach()
	}
}
