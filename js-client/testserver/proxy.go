package main

import (
	"net"
	"sync"
)

// proxy forwards TCP connections to a target and can cut them all at once
// (as a network that drops connections) or hold all traffic for a while (as
// a network that goes silent). internal/faultproxy does more, but listens
// only on a port of its own choosing; the -addr flag needs this one.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu; both ends of every pair
	open  chan struct{}         // guarded by mu; closed unless paused
	down  bool                  // guarded by mu; refuse every connection
}

func newProxy(addr, target string) (*proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	open := make(chan struct{})
	close(open)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, open: open}
	go p.serve()
	return p, nil
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *proxy) forward(c net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		reset(c)
		return
	}
	t, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[t] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go p.copy(t, c, done)
	go p.copy(c, t, done)
	<-done
	c.Close()
	t.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, t)
	p.mu.Unlock()
}

// copy forwards src to dst, waiting while the proxy is paused.
func (p *proxy) copy(dst, src net.Conn, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			open := p.open
			p.mu.Unlock()
			<-open
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a cut: forward closes both ends
		}
	}
}

// CutAll resets every connection through the proxy and reports how many
// pairs it cut.
func (p *proxy) CutAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		reset(c)
	}
	return len(p.conns) / 2
}

// reset closes c with a RST, as a dropped network path looks to the peer.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// Down cuts every connection and resets every new one until Up, as a
// network that is down: every request fails at once.
func (p *proxy) Down() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.CutAll()
}

// Up ends a Down.
func (p *proxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Pause holds all traffic until Resume.
func (p *proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default:
	}
}

// Resume ends a Pause.
func (p *proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

// Close stops accepting and cuts every connection.
func (p *proxy) Close() error {
	err := p.ln.Close()
	p.Resume()
	p.CutAll()
	return err
}
