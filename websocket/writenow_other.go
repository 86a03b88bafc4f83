//go:build !unix

package websocket

import (
	"net"
	"syscall"
)

// rawConn returns nil: without a portable non-blocking write, writes always
// go through a goroutine.
func rawConn(net.Conn) syscall.RawConn { return nil }

func writeNow(syscall.RawConn, []byte) (int, error) { return 0, nil }
