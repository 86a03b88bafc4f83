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

// TestTrySendKeepsTheRest: trySend to a peer that does not read writes
// until the kernel's buffers are full and never waits: a write that fits
// in part keeps the rest, later trySends write nothing while it waits, and
// the next write that may wait (gorilla's Write here) sends the rest
// first, so that the peer reads every byte taken, in order, then the
// control frame.
func TestTrySendKeepsTheRest(t *testing.T) {
	peer, nc := tcpPair(t)
	defer peer.Close()
	s := new(socket)
	s.init(nc, time.Minute)
	if !s.now.usable() {
		t.Skip("SKIP: no write without waiting on this system")
	}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB
	var want []byte
	for i := 0; ; i++ {
		if i == 1<<12 {
			t.Fatal("256 MiB taken by a peer that does not read")
		}
		p := append([]byte(nil), chunk...)
		p[0] = byte(i)
		n, err := s.trySend(p)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break // full at a frame's end: nothing kept
		}
		want = append(want, p...) // whole, or in part with the rest kept
		if n < len(p) {
			break
		}
	}
	if n, err := s.trySend(chunk); n != 0 || err != nil {
		t.Fatalf("trySend while the socket is full = %d, %v, want 0, nil", n, err)
	}
	pong := []byte{0x8a, 0}
	want = append(want, pong...)
	read := make(chan []byte, 1)
	go func() {
		got := make([]byte, 0, len(want))
		buf := make([]byte, 64<<10)
		peer.SetReadDeadline(time.Now().Add(time.Minute)) // a bound, not a measurement
		for len(got) < len(want) {
			n, err := peer.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		read <- got
	}()
	s.SetWriteDeadline(time.Now().Add(time.Minute))
	if n, err := s.Write(pong); n != len(pong) || err != nil {
		t.Fatalf("gorilla's Write after trySend = %d, %v", n, err)
	}
	if got := <-read; !bytes.Equal(got, want) {
		t.Fatalf("the peer read %d bytes, want the %d taken then the pong, in order", len(got), len(want))
	}
}
