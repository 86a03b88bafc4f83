package websocket

import (
	"bytes"
	"fmt"
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

// TestSendNowaitNeverWaits: when the peer does not read, a nowait send
// returns blocked with the rest unsent instead of waiting; a frame gorilla
// writes meanwhile waits behind it, and finish then delivers every byte, in
// order, once the peer reads. It runs with the direct write(2) (where the
// platform has one) and without it, where every nowait send leaves its
// batch to finish.
func TestSendNowaitNeverWaits(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			peer, nc := tcpPair(t)
			defer peer.Close()
			defer nc.Close()
			s := &socket{Conn: nc, writeTimeout: 30 * time.Second}
			if direct {
				if s.raw = rawConn(nc); s.raw == nil {
					t.Skip("no direct write on this platform")
				}
			}
			var sent bytes.Buffer
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
			blocked := false
			for i := 0; i < 1024 && !blocked; i++ { // at most 64 MiB: far beyond any socket buffer
				chunk[0] = byte(i)
				var err error
				if blocked, err = s.send(chunk, true); err != nil {
					t.Fatal(err)
				}
				sent.Write(chunk)
			}
			if !blocked {
				t.Fatal("64 MiB went into a socket nobody reads without the socket filling up")
			}
			// gorilla answering a ping while the batch waits.
			pong := []byte{0x8a, 2, 'h', 'i'}
			if n, err := s.Write(pong); n != len(pong) || err != nil {
				t.Fatalf("Write while a batch is unsent = %d, %v", n, err)
			}
			sent.Write(pong)
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(io.LimitReader(peer, int64(sent.Len())))
				got <- b
			}()
			if err := s.finish(); err != nil {
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
		})
	}
}
