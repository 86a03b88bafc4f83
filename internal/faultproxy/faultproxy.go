// Package faultproxy is a TCP proxy for tests that breaks connections on
// purpose: it cuts them at once (CutAll) or at random times, stalls them,
// delays every chunk, holds all traffic (Pause), and closes idle connections
// the way load balancers and corporate proxies do.
//
// Random faults come from math/rand/v2 seeded by Options.Seed, and each
// connection draws its own generator from the proxy's in accept order, so a
// failing test that logs Proxy.Seed can be replayed with the same schedule
// of faults (up to the scheduling noise of the machine).
//
// The proxy listens on 127.0.0.1 only. Every goroutine it starts exits
// before Close returns.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Range is an interval of durations [Min, Max] from which the proxy draws
// uniformly. The zero Range disables the fault it configures.
type Range struct {
	Min, Max time.Duration
}

func (r Range) enabled() bool { return r.Max > 0 }

func (r Range) valid() bool { return r.Min >= 0 && r.Max >= r.Min }

func (r Range) draw(rng *rand.Rand) time.Duration {
	if r.Max <= r.Min {
		return r.Min
	}
	return r.Min + time.Duration(rng.Int64N(int64(r.Max-r.Min)+1))
}

// Options configures a Proxy. The zero value forwards faithfully and injects
// no fault except those triggered by CutAll and Pause.
type Options struct {
	// Seed seeds every random choice of the proxy. Zero picks a random seed,
	// which Proxy.Seed reports so that a test can log it.
	Seed uint64

	// CutAfter, when its Max is positive, cuts each connection once, at a
	// random time in [Min, Max] after it was accepted.
	CutAfter Range

	// StallEvery, when its Max is positive, stalls each connection
	// repeatedly: a stall starts a random time in [Min, Max] after the
	// connection was accepted or the previous stall ended. During a stall
	// nothing is forwarded in either direction; bytes wait in the proxy and
	// in the kernel's buffers, so writers eventually block.
	StallEvery Range

	// StallFor is how long each stall lasts, drawn at random from [Min, Max].
	// The default is 100ms.
	StallFor Range

	// Delay, when its Max is positive, holds each chunk (one read from a
	// socket, up to ChunkSize bytes) for a random time in [Min, Max] before
	// forwarding it. Chunks stay in order, so the delay also limits
	// throughput.
	Delay Range

	// IdleTimeout, when positive, closes a connection on which no byte has
	// arrived or been forwarded, in either direction, for this long. Stalls
	// and Pause do not count as activity.
	IdleTimeout time.Duration

	// DialTimeout bounds the connection to the target. The default is 5s.
	DialTimeout time.Duration

	// ChunkSize is the largest single read from a socket. The default is
	// 32 KiB.
	ChunkSize int
}

// Stats counts what a Proxy has done. Bytes are counted when forwarded.
type Stats struct {
	Accepted   int64 // connections accepted from clients
	Live       int64 // connections open now
	Cuts       int64 // connections cut by CutAll or Options.CutAfter
	IdleKills  int64 // connections closed by Options.IdleTimeout
	Stalls     int64 // stalls started by Options.StallEvery
	DialErrors int64 // accepted connections closed because the target did not answer
	BytesUp    int64 // bytes forwarded from clients to the target
	BytesDown  int64 // bytes forwarded from the target to clients
}

// Proxy forwards TCP connections from Addr to a target and injects faults.
// All methods may be called concurrently.
type Proxy struct {
	target string
	opts   Options
	ln     net.Listener
	ctx    context.Context // canceled by Close; ends dials and waits
	cancel context.CancelFunc
	pause  *gate

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex
	rng    *rand.Rand         // guarded by mu
	links  map[*link]struct{} // guarded by mu
	closed bool               // guarded by mu

	accepted, cuts, idleKills, stalls, dialErrors atomic.Int64
	live, bytesUp, bytesDown                      atomic.Int64
}

// New starts a proxy on a free port of 127.0.0.1 that forwards every
// connection to target (host:port). opts may be nil for defaults; the
// proxy keeps a copy.
func New(target string, opts *Options) (*Proxy, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	for name, r := range map[string]Range{"CutAfter": o.CutAfter, "StallEvery": o.StallEvery, "StallFor": o.StallFor, "Delay": o.Delay} {
		if !r.valid() {
			return nil, fmt.Errorf("faultproxy: invalid %s range [%v, %v]", name, r.Min, r.Max)
		}
	}
	if o.IdleTimeout < 0 || o.DialTimeout < 0 || o.ChunkSize < 0 {
		return nil, errors.New("faultproxy: negative IdleTimeout, DialTimeout or ChunkSize")
	}
	if !o.StallFor.enabled() {
		o.StallFor = Range{Min: 100 * time.Millisecond, Max: 100 * time.Millisecond}
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = 32 << 10
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64() | 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{
		target: target,
		opts:   o,
		ln:     ln,
		pause:  newGate(),
		rng:    rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		links:  make(map[*link]struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address clients connect to, as host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Seed returns the seed of the proxy's random faults: Options.Seed, or the
// one New picked.
func (p *Proxy) Seed() uint64 { return p.opts.Seed }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted:   p.accepted.Load(),
		Live:       p.live.Load(),
		Cuts:       p.cuts.Load(),
		IdleKills:  p.idleKills.Load(),
		Stalls:     p.stalls.Load(),
		DialErrors: p.dialErrors.Load(),
		BytesUp:    p.bytesUp.Load(),
		BytesDown:  p.bytesDown.Load(),
	}
}

// CutAll cuts every live connection now, as a network failure would: both
// sides see their connection reset. New connections are accepted as usual.
// It returns how many connections it cut.
func (p *Proxy) CutAll() int {
	n := 0
	for _, l := range p.snapshot() {
		if l.abort() {
			n++
		}
	}
	p.cuts.Add(int64(n))
	return n
}

// Pause stops forwarding on every connection, new ones included, until
// Resume: the connections stay open but fall silent, like a network that
// drops packets. A chunk already being written still completes.
func (p *Proxy) Pause() { p.pause.shut() }

// Resume ends a Pause; held bytes are forwarded in order.
func (p *Proxy) Resume() { p.pause.lift() }

// Close stops accepting, closes every connection and waits for all of the
// proxy's goroutines to exit. Later calls return the first call's result.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.closeErr = fmt.Errorf("faultproxy: %w", err)
		}
		for _, l := range p.snapshot() {
			l.close()
		}
		p.wg.Wait()
	})
	return p.closeErr
}

func (p *Proxy) snapshot() []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	return links
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient failure such as too many open files.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// newRand draws a generator for one connection from the proxy's.
func (p *Proxy) newRand() *rand.Rand {
	p.mu.Lock()
	defer p.mu.Unlock()
	return rand.New(rand.NewPCG(p.rng.Uint64(), p.rng.Uint64()))
}

// serve dials the target for client c, then supervises the connection pair
// until it is closed.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	// Draw the generators first so that each connection's faults depend on
	// its accept order only, not on how long the dial took.
	rngs := [3]*rand.Rand{p.newRand(), p.newRand(), p.newRand()}
	d := net.Dialer{Timeout: p.opts.DialTimeout}
	s, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		p.dialErrors.Add(1)
		c.Close()
		return
	}
	l := newLink(p, c, s)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	p.live.Add(1)
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
		p.live.Add(-1)
	}()

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); l.pump(s, c, rngs[1], &p.bytesUp) }()
	go func() { defer pumps.Done(); l.pump(c, s, rngs[2], &p.bytesDown) }()
	l.supervise(rngs[0])
	pumps.Wait()
}
