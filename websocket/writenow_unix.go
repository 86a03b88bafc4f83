//go:build unix

package websocket

import (
	"errors"
	"net"
	"syscall"
)

// rawConn returns the socket under nc for writeNow, or nil when nc has none
// (a TLS connection, a test's pipe): writes then always go through a
// goroutine.
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// nowWriter makes one write(2) on a non-blocking socket without waiting
// for it to become writable. Its callback is made once, so a write
// allocates nothing. Not for concurrent use.
type nowWriter struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// write writes as much of p as the socket takes at once, without waiting.
// It returns how many bytes went out; a full socket is not an error.
func (w *nowWriter) write(rc syscall.RawConn, p []byte) (int, error) {
	if w.fn == nil {
		w.fn = func(fd uintptr) bool {
			w.n, w.err = syscall.Write(int(fd), w.p)
			return true // never wait for the socket to become writable
		}
	}
	w.p = p
	err := rc.Write(w.fn)
	n, werr := w.n, w.err
	w.p, w.n, w.err = nil, 0, nil
	switch {
	case err != nil:
		return 0, err
	case errors.Is(werr, syscall.EAGAIN), errors.Is(werr, syscall.EINTR):
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return n, nil
}
