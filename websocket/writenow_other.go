//go:build !unix

package websocket

import (
	"net"
	"syscall"
)

// rawConn returns nil: without a portable non-blocking write, writes always
// go through a goroutine.
func rawConn(net.Conn) syscall.RawConn { return nil }

// nowWriter never writes: the goroutine that finishes the flush does.
type nowWriter struct{}

func (nowWriter) write(syscall.RawConn, []byte) (int, error) { return 0, nil }
