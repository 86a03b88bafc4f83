package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetherkit/tether/session"
)

// errOwnerGone is returned by Node.call when the owner has been judged gone.
var errOwnerGone = errors.New("cluster: owner node gone")

// errNodeClosed is returned by Node.call once the node has closed: for the
// requests it still serves, the owner cannot be reached.
var errNodeClosed = fmt.Errorf("%w: node closed", session.ErrUnreachable)

// maxSuspects bounds the owners under suspicion at once. An owner never
// heard from (a forged id, as likely as a real one) that comes beyond it
// is judged gone at once, so that a flood of made-up ids holds no
// requests and starts no pingers.
const maxSuspects = 64

// maxGoneRemembered bounds the gone owners a node remembers; beyond it the
// oldest is forgotten (a request for it is then judged anew).
const maxGoneRemembered = 1024

// peer is what this node knows of another node it relays to: whether it
// answers. Its fields are guarded by the node's peersMu.
type peer struct {
	n       *Node
	id      string
	subject string

	heard   bool          // it has answered a request once
	links   int           // remote links open to it: pinged while not zero
	suspect bool          // its subject had no handler at the last request
	since   time.Time     // the first of the no-responder answers in a row
	settled chan struct{} // closed when the suspicion ends: answered again, or gone
	pinging bool          // a pinger goroutine runs

	goneCtx  context.Context // ends when the peer is judged gone, or the node closes
	markGone context.CancelFunc
	isGone   bool
	probed   time.Time // when a request last went to it once judged gone
}

// peer returns the peer with id, made on first use.
func (n *Node) peer(id string) *peer {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	p := n.peers[id]
	if p == nil {
		p = &peer{n: n, id: id, subject: nodeSubject(id)}
		p.goneCtx, p.markGone = context.WithCancel(n.ctx)
		n.peers[id] = p
	}
	return p
}

// gone reports whether p has been judged gone.
func (p *peer) gone() bool {
	p.n.peersMu.Lock()
	defer p.n.peersMu.Unlock()
	return p.isGone
}

// judgedGone reports whether p is judged gone and no request should go
// to it. Once every OwnerGoneAfter it reports false all the same, to one
// caller, whose request finds out whether the verdict still holds: a
// node whose bus connection was away for longer than OwnerGoneAfter (an
// engine that took long to restart) answers again, and is then taken back
// (answered).
func (p *peer) judgedGone() bool {
	n := p.n
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	if !p.isGone {
		return false
	}
	if time.Since(p.probed) < n.opts.OwnerGoneAfter {
		return true
	}
	p.probed = time.Now()
	return false
}

// watch returns a context that ends when p is judged gone, or nil when it
// is already.
func (p *peer) watch() context.Context {
	p.n.peersMu.Lock()
	defer p.n.peersMu.Unlock()
	if p.isGone {
		return nil
	}
	return p.goneCtx
}

// answered records that p answered: a suspicion ends, and a verdict of
// gone is taken back.
func (p *peer) answered() {
	n := p.n
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	if p.isGone {
		p.isGone = false
		p.goneCtx, p.markGone = context.WithCancel(n.ctx)
		n.log.Warn("tether: cluster node judged gone answers again", "peer", p.id)
	}
	p.heard = true
	p.since = time.Time{}
	if p.suspect {
		p.suspect = false
		n.suspects--
		close(p.settled)
	}
}

// unreachable records an answer that says nothing of p (the bus is down):
// the no-responder answers are no longer in a row.
func (p *peer) unreachable() {
	n := p.n
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	p.since = time.Time{}
}

// noResponders records that p's subject had no handler, and returns a
// channel closed when that suspicion settles. The suspicion turns into a
// verdict of gone once such answers have come in a row for OwnerGoneAfter;
// a pinger asks meanwhile.
func (p *peer) noResponders() <-chan struct{} {
	n := p.n
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	if p.isGone {
		return p.goneCtx.Done()
	}
	now := time.Now()
	if p.since.IsZero() {
		p.since = now
	}
	if !p.suspect {
		if !p.heard && n.suspects >= maxSuspects {
			p.goneLocked()
			return p.goneCtx.Done()
		}
		p.suspect = true
		n.suspects++
		p.settled = make(chan struct{})
	}
	if now.Sub(p.since) >= n.opts.OwnerGoneAfter {
		p.goneLocked()
		return p.goneCtx.Done()
	}
	p.pingLocked()
	return p.settled
}

// goneLocked judges p gone, for good: node ids are never reused. Called
// with peersMu held.
func (p *peer) goneLocked() {
	n := p.n
	if p.isGone {
		return
	}
	p.isGone = true
	p.probed = time.Now()
	p.markGone()
	if p.suspect {
		p.suspect = false
		n.suspects--
		close(p.settled)
	}
	n.log.Warn("tether: cluster node gone", "peer", p.id)
	n.gone = append(n.gone, p.id)
	if len(n.gone) > maxGoneRemembered {
		delete(n.peers, n.gone[0])
		n.gone = n.gone[1:]
	}
}

// addLink and removeLink count the remote links open to p: while there are
// some, p is pinged, so that a pull held by a node that died is found out
// without waiting for its timeout.
func (p *peer) addLink() {
	p.n.peersMu.Lock()
	defer p.n.peersMu.Unlock()
	p.links++
	p.pingLocked()
}

func (p *peer) removeLink() {
	p.n.peersMu.Lock()
	defer p.n.peersMu.Unlock()
	p.links--
}

// pingLocked starts the pinger unless it runs. Called with peersMu held.
func (p *peer) pingLocked() {
	if p.pinging || p.isGone {
		return
	}
	p.pinging = p.n.goAsync(p.ping)
}

// ping asks p whether it is there every pingInterval while it has remote
// links or is suspected, until it is judged gone or the node closes.
func (p *peer) ping() {
	n := p.n
	t := time.NewTicker(n.pingInterval())
	defer t.Stop()
	req := appendHeader(nil, callPing, n.id, "", "")
	for {
		select {
		case <-t.C:
		case <-n.ctx.Done():
			n.peersMu.Lock()
			p.pinging = false
			n.peersMu.Unlock()
			return
		}
		n.peersMu.Lock()
		if p.isGone || (p.links == 0 && !p.suspect) {
			p.pinging = false
			n.peersMu.Unlock()
			return
		}
		n.peersMu.Unlock()
		ctx, cancel := context.WithTimeout(n.ctx, n.pingInterval())
		_, err := n.bus.Request(ctx, p.subject, req)
		cancel()
		switch {
		case err == nil:
			p.answered()
		case errors.Is(err, ErrNoResponders):
			p.noResponders()
		default:
			p.unreachable()
		}
	}
}

// pingInterval is how often a peer is asked whether it is there.
func (n *Node) pingInterval() time.Duration {
	return max(n.opts.OwnerGoneAfter/5, 10*time.Millisecond)
}

// call sends req to p and returns the reply. A request that finds no
// handler on p's subject is sent again once the suspicion it raises
// settles, and fails with errOwnerGone once p is judged gone. wait is how
// long the owner may take besides RequestTimeout. It returns an error
// wrapping session.ErrUnreachable when the bus fails or the reply does not
// come in time, and ctx's error when ctx ends first; a call also ends when
// the node closes or p is judged gone.
func (n *Node) call(ctx context.Context, p *peer, req []byte, wait time.Duration) ([]byte, error) {
	for {
		if n.ctx.Err() != nil {
			return nil, errNodeClosed
		}
		rctx, cancel := context.WithTimeout(ctx, wait+n.opts.RequestTimeout)
		// The request ends when p is judged gone or the node closes
		// (goneCtx is a child of the node's context); once p is judged
		// gone already, when the node closes.
		watch := p.watch()
		if watch == nil {
			watch = n.ctx
		}
		stop := context.AfterFunc(watch, cancel)
		data, err := n.bus.Request(rctx, p.subject, req)
		stop()
		cancel()
		switch {
		case err == nil:
			p.answered()
			return data, nil
		case p.gone():
			return nil, errOwnerGone
		case n.ctx.Err() != nil:
			// Before ctx: the node's calls pass its own context.
			return nil, errNodeClosed
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, ErrNoResponders):
			settled := p.noResponders()
			select {
			case <-settled:
			case <-n.ctx.Done():
				return nil, errNodeClosed
			case <-ctx.Done():
				if n.ctx.Err() != nil {
					return nil, errNodeClosed
				}
				return nil, ctx.Err()
			}
		default:
			p.unreachable()
			return nil, fmt.Errorf("%w: %w", session.ErrUnreachable, err)
		}
	}
}
