package faultproxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// link is one proxied connection: the client's socket and the one to the
// target, two pumps (one per direction) and a supervisor that injects the
// timed faults.
type link struct {
	p              *Proxy
	client, server net.Conn
	stall          *gate
	born           time.Time

	closeOnce sync.Once
	done      chan struct{} // closed when the link is closed

	lastActive atomic.Int64 // time since born of the last activity, in nanoseconds
	halves     atomic.Int32 // directions that ended with EOF
}

func newLink(p *Proxy, client, server net.Conn) *link {
	return &link{
		p:      p,
		client: client,
		server: server,
		stall:  newGate(),
		born:   time.Now(),
		done:   make(chan struct{}),
	}
}

func (l *link) touch() { l.lastActive.Store(int64(time.Since(l.born))) }

// close closes both sockets. It reports whether this call closed the link.
func (l *link) close() bool {
	closed := false
	l.closeOnce.Do(func() {
		closed = true
		close(l.done)
		l.client.Close()
		l.server.Close()
	})
	return closed
}

// abort closes both sockets with a reset instead of an orderly shutdown, so
// that bytes not yet read are lost as in a real cut. It reports whether this
// call closed the link.
func (l *link) abort() bool {
	select {
	case <-l.done:
		return false
	default:
	}
	for _, c := range []net.Conn{l.client, l.server} {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	return l.close()
}

// pump forwards src to dst until either fails. An EOF from src is passed on
// as a half close, so a peer that shuts down its writing side still gets
// the rest of the answer; the link closes when both directions have ended.
func (l *link) pump(dst, src net.Conn, rng *rand.Rand, count *atomic.Int64) {
	buf := make([]byte, l.p.opts.ChunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.touch()
			if !l.forward(dst, buf[:n], rng, count) {
				return
			}
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			l.close()
			return
		}
		if hc, ok := dst.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
			if l.halves.Add(1) == 2 {
				l.close()
			}
			return
		}
		l.close()
		return
	}
}

// forward applies the delay, waits out stalls and pauses, then writes p.
// It reports false when the link is closed or the write failed.
func (l *link) forward(dst net.Conn, p []byte, rng *rand.Rand, count *atomic.Int64) bool {
	if d := l.p.opts.Delay; d.enabled() {
		if !sleep(d.draw(rng), l.done) {
			return false
		}
	}
	if !l.p.pause.wait(l.done) || !l.stall.wait(l.done) {
		return false
	}
	n, err := dst.Write(p)
	count.Add(int64(n))
	if err != nil {
		l.close()
		return false
	}
	l.touch()
	return true
}

// supervise runs the timed faults of one link until it is closed.
func (l *link) supervise(rng *rand.Rand) {
	o := &l.p.opts
	var cutC, stallC, idleC <-chan time.Time
	if o.CutAfter.enabled() {
		t := time.NewTimer(o.CutAfter.draw(rng))
		defer t.Stop()
		cutC = t.C
	}
	var stallT *time.Timer
	if o.StallEvery.enabled() {
		stallT = time.NewTimer(o.StallEvery.draw(rng))
		defer stallT.Stop()
		stallC = stallT.C
	}
	var idleT *time.Timer
	if o.IdleTimeout > 0 {
		idleT = time.NewTimer(o.IdleTimeout)
		defer idleT.Stop()
		idleC = idleT.C
	}
	stalled := false
	for {
		select {
		case <-l.done:
			return
		case <-cutC:
			if l.abort() {
				l.p.cuts.Add(1)
			}
		case <-stallC:
			if stalled {
				l.stall.lift()
				stallT.Reset(o.StallEvery.draw(rng))
			} else {
				l.stall.shut()
				l.p.stalls.Add(1)
				stallT.Reset(o.StallFor.draw(rng))
			}
			stalled = !stalled
		case <-idleC:
			idle := time.Since(l.born) - time.Duration(l.lastActive.Load())
			if idle >= o.IdleTimeout {
				if l.abort() {
					l.p.idleKills.Add(1)
				}
				continue
			}
			idleT.Reset(o.IdleTimeout - idle)
		}
	}
}

// sleep waits for d or until done is closed; it reports whether d passed.
func sleep(d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// gate blocks the pumps while it is shut.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open; guarded by mu
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default: // already shut
	}
}

func (g *gate) lift() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open: // already open
	default:
		close(g.open)
	}
}

// wait blocks until the gate is open or done is closed; it reports whether
// the gate opened.
func (g *gate) wait(done <-chan struct{}) bool {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return true
	case <-done:
		return false
	}
}
