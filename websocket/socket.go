package websocket

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// socket is the network connection under a WebSocket and the only way to
// write to it: every byte written after the handshake goes through it,
// under mu, so no two writes interleave on the network. It has two
// writers. The connection's flush (one at a time, see flushState) hands it
// whole batches of frames with send; gorilla, which holds the socket as its
// net.Conn, writes through Write: a control frame from the reader (a pong,
// the answer to a client's close, the close of a protocol error) or the
// WebSocket close the flush asks it for (closeConn).
//
// A batch that a full socket does not take at once (send with nowait)
// leaves the rest in unsent, ahead of anything written later, until finish
// writes it: a sender never waits for the network, and nothing overtakes
// what it sent.
type socket struct {
	net.Conn
	// raw is the socket's file descriptor, for send's nowait write; nil
	// without one (a TLS connection, a pipe, a platform without
	// non-blocking writes): a nowait send then leaves the whole batch to
	// finish.
	raw          syscall.RawConn
	writeTimeout time.Duration // the deadline of send's and finish's writes

	mu       sync.Mutex
	unsent   *[]byte   // what a nowait send did not write; nil when nothing waits (guarded by mu)
	deadline time.Time // gorilla's deadline for its next Write (guarded by mu)
	failed   error     // the error of a failed write: every later write returns it (guarded by mu)
	now      nowWriter // send's nowait write, kept to allocate nothing per call (guarded by mu)
}

// unsentBuffers holds the buffers of unsent bytes between slow writes, as
// *[]byte, so that a connection holds none once its write is done.
var unsentBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// maxPooledUnsent is the largest unsent buffer put back in unsentBuffers.
const maxPooledUnsent = 128 << 10

// Write implements net.Conn for gorilla, whose writes are whole frames.
// While a batch waits in unsent, p joins it and finish writes both.
func (s *socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return 0, s.failed
	}
	if s.unsent != nil {
		*s.unsent = append(*s.unsent, p...)
		return len(p), nil
	}
	s.Conn.SetWriteDeadline(s.deadline)
	return s.writeLocked(p)
}

// SetWriteDeadline implements net.Conn for gorilla: it sets the deadline
// of gorilla's next Write only, as the socket's own writes set theirs.
func (s *socket) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}

// SetDeadline implements net.Conn for gorilla: it sets the read deadline,
// and the deadline of gorilla's next Write.
func (s *socket) SetDeadline(t time.Time) error {
	s.SetWriteDeadline(t)
	return s.Conn.SetReadDeadline(t)
}

// send writes p. Without nowait it waits for the network, for at most
// writeTimeout. With nowait it writes only what the socket takes at once,
// and reports blocked when some of p is left: the caller then calls finish
// (on a goroutine that may wait) before it sends again. p may be reused
// once send returns.
func (s *socket) send(p []byte, nowait bool) (blocked bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return false, s.failed
	}
	if !nowait {
		s.Conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		_, err := s.writeLocked(p)
		return false, err
	}
	n := 0
	if s.raw != nil {
		if n, err = s.now.write(s.raw, p); err != nil {
			s.failed = err
			return false, err
		}
	}
	if n == len(p) {
		return false, nil
	}
	s.unsent = unsentBuffers.Get().(*[]byte)
	*s.unsent = append((*s.unsent)[:0], p[n:]...)
	return true, nil
}

// finish writes what a nowait send left, and what joined it since,
// waiting for the network for at most writeTimeout.
func (s *socket) finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.unsent
	if b == nil {
		return s.failed
	}
	s.unsent = nil
	var err error
	if s.failed != nil {
		err = s.failed
	} else {
		s.Conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		_, err = s.writeLocked(*b)
	}
	if cap(*b) <= maxPooledUnsent {
		*b = (*b)[:0]
		unsentBuffers.Put(b)
	}
	return err
}

// writeLocked writes p to the network; a failure fails the socket.
func (s *socket) writeLocked(p []byte) (int, error) {
	n, err := s.Conn.Write(p)
	if err != nil {
		s.failed = err
	}
	return n, err
}

// hijackingWriter hands gorilla's Upgrade a socket when it hijacks the
// connection, so that gorilla writes through it from the handshake on.
type hijackingWriter struct {
	http.ResponseWriter
	writeTimeout time.Duration
	socket       *socket
}

// Hijack implements http.Hijacker.
func (w *hijackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.socket = &socket{Conn: nc, raw: rawConn(nc), writeTimeout: w.writeTimeout}
	return w.socket, brw, nil
}
