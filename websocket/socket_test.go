package websocket

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
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

// TestFailedWriteFailsSocket: a write that reaches its deadline, having
// written part of a batch to a client that does not read, fails the
// socket: later writes, the flush's and gorilla's, return the error and
// write nothing after the broken frame.
func TestFailedWriteFailsSocket(t *testing.T) {
	peer, nc := tcpPair(t)
	defer peer.Close()
	s := &socket{Conn: nc, writeTimeout: 100 * time.Millisecond}
	batch := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB: far beyond any socket buffer
	err := s.send(batch)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("send to a peer that does not read = %v, want a deadline error", err)
	}
	if err2 := s.send([]byte("more")); err2 != err {
		t.Errorf("send after the failure = %v, want %v", err2, err)
	}
	if n, err2 := s.Write([]byte{0x8a, 0}); n != 0 || err2 != err {
		t.Errorf("gorilla's Write after the failure = %d, %v, want 0, %v", n, err2, err)
	}
	nc.Close()
	peer.SetReadDeadline(time.Now().Add(time.Minute)) // a bound, not a measurement
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= len(batch) || !bytes.Equal(got, batch[:len(got)]) {
		t.Fatalf("the peer read %d bytes; want a part of the %d-byte batch and nothing after it", len(got), len(batch))
	}
}
