package websocket

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestTryUncorkNeverWaits: when the peer does not read, tryUncork returns
// with the rest still corked instead of waiting; uncork then delivers every
// byte, in order, once the peer reads.
func TestTryUncorkNeverWaits(t *testing.T) {
	peer, nc := tcpPair(t)
	c := &corkConn{Conn: nc, raw: rawConn(nc)}
	if c.raw == nil {
		t.Skip("no raw socket on this platform")
	}
	var sent bytes.Buffer
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	blocked := false
	for i := 0; i < 1024 && !blocked; i++ { // at most 64 MiB: far beyond any socket buffer
		c.corkHold()
		chunk[0] = byte(i)
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
		sent.Write(chunk)
		done, err := c.tryUncork()
		if err != nil {
			t.Fatal(err)
		}
		blocked = !done
	}
	if !blocked {
		t.Fatal("64 MiB went into a socket nobody reads without the socket filling up")
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(sent.Len())))
		got <- b
	}()
	nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, sent.Bytes()) {
			t.Fatalf("the peer read %d bytes that differ from the %d written", len(b), sent.Len())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the peer did not receive everything")
	}
}
