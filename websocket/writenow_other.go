//go:build !unix

package websocket

import "net"

// nowWriter writes to a connection without waiting for it; this system
// has none, so every write waits on a connection's own goroutine.
type nowWriter struct{}

func (*nowWriter) init(net.Conn) {}

func (*nowWriter) usable() bool { return false }

func (*nowWriter) write(p []byte) (int, error) { return 0, nil }
