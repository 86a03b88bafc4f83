package client_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/wire"
)

// TestResumeAfterCut cuts every TCP connection of the client several times
// while a burst of messages flows both ways through an echo server, and
// checks that every message comes back exactly once and in order.
func TestResumeAfterCut(t *testing.T) {
	const total = 2000
	cutAt := map[int]bool{100: true, 700: true, 701: true, 1500: true}
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := startServer(t, echo, nil, nil)
			var n network
			s := dial(t, ctx, url, n.options(t, name))

			sendErr := make(chan error, 1)
			go func() {
				for i := range total {
					m := textMsg(strconv.Itoa(i))
					if i%3 == 0 {
						m.Type = wire.Binary
					}
					if err := s.Send(ctx, m); err != nil {
						sendErr <- fmt.Errorf("Send(%d) = %w", i, err)
						return
					}
				}
				sendErr <- nil
			}()
			for i := range total {
				if cutAt[i] {
					n.cut()
				}
				m, err := s.Recv(ctx)
				if err != nil {
					t.Fatalf("Recv() #%d = %v", i, err)
				}
				wantType := wire.Text
				if i%3 == 0 {
					wantType = wire.Binary
				}
				if string(m.Data) != strconv.Itoa(i) || m.Type != wantType {
					t.Fatalf("Recv() #%d = %v %q, want %v %q", i, m.Type, m.Data, wantType, strconv.Itoa(i))
				}
			}
			if err := <-sendErr; err != nil {
				t.Fatal(err)
			}
			n.mu.Lock()
			cuts := n.cuts
			n.mu.Unlock()
			if cuts == 0 {
				t.Fatal("no connection was cut: the test proves nothing")
			}
			// Nothing more may come: a duplicate would show up here.
			if err := s.Send(ctx, textMsg("last")); err != nil {
				t.Fatal(err)
			}
			if m, err := s.Recv(ctx); err != nil || string(m.Data) != "last" {
				t.Fatalf("Recv() after the burst = %q, %v; want \"last\"", m.Data, err)
			}
			if err := s.Close(wire.StatusNormalClosure, ""); err != nil {
				t.Fatalf("Close() = %v", err)
			}
		})
	}
}

// TestResumeAfterSilence stops the client from hearing anything on its
// connections without closing them (a dead network path); the client must
// notice the silence after two heartbeat intervals and attach again.
func TestResumeAfterSilence(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := startServer(t, echo, &tether.Options{HeartbeatInterval: 100 * time.Millisecond}, nil)
			var n network
			s := dial(t, ctx, url, n.options(t, name))
			if err := s.Send(ctx, textMsg("before")); err != nil {
				t.Fatal(err)
			}
			if m, err := s.Recv(ctx); err != nil || string(m.Data) != "before" {
				t.Fatalf("Recv() = %q, %v; want \"before\"", m.Data, err)
			}
			n.stall()
			for i := range 20 {
				if err := s.Send(ctx, textMsg(strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 20 {
				m, err := s.Recv(ctx)
				if err != nil || string(m.Data) != strconv.Itoa(i) {
					t.Fatalf("Recv() #%d = %q, %v; want %q", i, m.Data, err, strconv.Itoa(i))
				}
			}
		})
	}
}
