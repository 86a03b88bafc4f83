//go:build unix

package websocket

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// nowWriter writes to a connection without waiting for it: one write
// system call on its non-blocking descriptor, which takes what fits in the
// kernel's buffer and leaves the rest. It is what lets a publish write to
// many connections on its own goroutine (socket.trySend), as a
// hand-written broadcast loop does, without a client that does not read
// holding it up. Its zero value cannot write (usable is false) until init;
// its methods are called under the socket's lock.
type nowWriter struct {
	conn net.Conn
	raw  syscall.RawConn
	fn   func(fd uintptr) bool // writes p, setting n and err; made once
	p    []byte
	n    int
	err  error
}

// init makes w write to c, unless c is not a descriptor of its own (a TLS
// connection, say): w then stays unusable.
func (w *nowWriter) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	w.conn, w.raw = c, raw
	w.fn = func(fd uintptr) bool {
		for {
			w.n, w.err = syscall.Write(int(fd), w.p)
			if w.err != syscall.EINTR {
				return true // done, whatever happened: never wait
			}
		}
	}
}

// usable reports whether w can write: init found a descriptor.
func (w *nowWriter) usable() bool { return w.raw != nil }

// write writes what of p the kernel takes now and returns how much that
// was: 0 when its buffer is full.
func (w *nowWriter) write(p []byte) (int, error) {
	w.p = p
	err := w.raw.Write(w.fn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline of an earlier write that waited has passed:
		// this write sets none.
		w.conn.SetWriteDeadline(time.Time{})
		err = w.raw.Write(w.fn)
	}
	w.p = nil
	if err != nil {
		return 0, err
	}
	switch {
	case w.err == syscall.EAGAIN:
		return 0, nil
	case w.err != nil:
		return 0, os.NewSyscallError("write", w.err)
	}
	return w.n, nil
}
