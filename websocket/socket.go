package websocket

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// socket is the network connection under a WebSocket and the only way to
// write to it: every byte written after the handshake goes through it,
// under mu, so no two writes interleave on the network. It has two
// writers. The connection's flush (one at a time, see flushState) hands it
// whole batches of frames with send, or with trySend when the flush runs
// on a publisher's goroutine, which must not wait; gorilla, which holds the
// socket as its net.Conn, writes through Write: a control frame from the
// reader (a pong, the answer to a client's close, the close of a protocol
// error) or the WebSocket close the flush asks it for (closeConn). A write
// waits for a client that does not read for at most its deadline; gorilla's
// Write then waits behind it, which the reader's deadline bounds in turn.
type socket struct {
	net.Conn
	writeTimeout time.Duration // the deadline of send's writes

	mu       sync.Mutex
	deadline time.Time // gorilla's deadline for its next Write (guarded by mu)
	// failed is the error of a failed write, which may have written part
	// of a frame: every later write returns it rather than write after
	// the broken frame (guarded by mu).
	failed error
	// rest is the end of what trySend could write only in part: it goes
	// out before anything else, so that a frame is never cut by another
	// (guarded by mu).
	rest []byte
	// now writes without waiting (writenow_unix.go); it cannot where the
	// connection offers no way to (TLS), and trySend then writes nothing.
	// A value in the socket, as the socket is in its connection: a
	// publish writing to many connections reaches each one's memory in
	// one place (see package internal/subscribers).
	now nowWriter
}

// init makes s the socket over nc, whose writes that may wait (send) wait
// for at most writeTimeout. s must not be in use yet.
func (s *socket) init(nc net.Conn, writeTimeout time.Duration) {
	s.Conn, s.writeTimeout = nc, writeTimeout
	s.now.init(nc)
}

// Write implements net.Conn for gorilla, whose writes are whole frames.
func (s *socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Conn.SetWriteDeadline(s.deadline)
	return s.writeLocked(p)
}

// SetWriteDeadline implements net.Conn for gorilla: it sets the deadline
// of gorilla's next Write only, as send sets its own.
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

// send writes p, waiting for the network for at most writeTimeout. p may
// be reused once send returns. What the network takes at once goes out
// without a deadline: setting one costs a timer operation, which wakes
// another thread of the runtime, on every write.
func (s *socket) send(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now.usable() && s.failed == nil && len(s.rest) == 0 {
		n, err := s.now.write(p)
		if err != nil {
			s.failed = err
			return err
		}
		if n == len(p) {
			return nil
		}
		p = p[n:]
	}
	s.Conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	_, err := s.writeLocked(p)
	return err
}

// trySend writes what of p the network takes at once, and never waits. It
// returns how much it wrote: all of p; none, when a write is under way, the
// rest of an earlier one waits, the network takes nothing now, or the
// connection offers no way to write without waiting; or a part, the rest
// of which the socket keeps, to go out first on the next write that may
// wait (send, Write). A failed write fails the socket.
func (s *socket) trySend(p []byte) (int, error) {
	if !s.now.usable() || !s.mu.TryLock() {
		return 0, nil
	}
	defer s.mu.Unlock()
	if s.failed != nil {
		return 0, s.failed
	}
	if len(s.rest) > 0 {
		return 0, nil
	}
	n, err := s.now.write(p)
	if err != nil {
		s.failed = err
		return 0, err
	}
	if 0 < n && n < len(p) {
		s.rest = append([]byte(nil), p[n:]...)
	}
	return n, nil
}

// writeLocked writes p to the network, after the rest of an earlier
// trySend, unless an earlier write failed; a failure fails the socket.
func (s *socket) writeLocked(p []byte) (int, error) {
	if s.failed != nil {
		return 0, s.failed
	}
	if len(s.rest) > 0 {
		if _, err := s.Conn.Write(s.rest); err != nil {
			s.failed = err
			return 0, err
		}
		s.rest = nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := s.Conn.Write(p)
	if err != nil {
		s.failed = err
	}
	return n, err
}

// hijackingWriter hands gorilla's Upgrade a socket when it hijacks the
// connection, so that gorilla writes through it from the handshake on: it
// makes socket, which its connection holds, the socket over what it
// hijacked.
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
	w.socket.init(nc, w.writeTimeout)
	return w.socket, brw, nil
}
