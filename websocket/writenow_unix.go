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

// writeNow writes as much of p as the socket takes at once, without
// waiting: one write(2) on the non-blocking socket. It returns how many
// bytes went out; a full socket is not an error.
func writeNow(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), p)
		return true // never wait for the socket to become writable
	})
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
