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
// whole batches of frames with send; gorilla, which holds the socket as its
// net.Conn, writes through Write: a control frame from the reader (a pong,
// the answer to a client's close, the close of a protocol error) or the
// WebSocket close the flush asks it for (closeConn). A write waits for a
// client that does not read for at most its deadline; gorilla's Write then
// waits behind it, which the reader's deadline bounds in turn.
type socket struct {
	net.Conn
	writeTimeout time.Duration // the deadline of send's writes

	mu       sync.Mutex
	deadline time.Time // gorilla's deadline for its next Write (guarded by mu)
	// failed is the error of a failed write, which may have written part
	// of a frame: every later write returns it rather than write after
	// the broken frame (guarded by mu).
	failed error
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
// be reused once send returns.
func (s *socket) send(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	_, err := s.writeLocked(p)
	return err
}

// writeLocked writes p to the network, unless an earlier write failed; a
// failure fails the socket.
func (s *socket) writeLocked(p []byte) (int, error) {
	if s.failed != nil {
		return 0, s.failed
	}
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
	w.socket = &socket{Conn: nc, writeTimeout: w.writeTimeout}
	return w.socket, brw, nil
}
