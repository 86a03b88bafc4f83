package client_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
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

// TestResumeCallbacks silences the connection (as TestResumeAfterSilence
// does: unlike a cut, it cannot fall between two polls) and checks what the
// callbacks report: OnResuming, then OnResumed once attached again to the
// same session, and no OnReconnecting, which is for a new session only.
func TestResumeCallbacks(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := startServer(t, echo, &tether.Options{HeartbeatInterval: 100 * time.Millisecond}, nil)
			var (
				n       network
				mu      sync.Mutex
				events  []string
				resumed = make(chan struct{}, 1)
			)
			note := func(e string) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, e)
			}
			o := n.options(t, name)
			o.OnResuming = func() { note("resuming") }
			o.OnResumed = func() {
				note("resumed")
				select {
				case resumed <- struct{}{}:
				default:
				}
			}
			o.OnReconnecting = func(ce wire.CloseError) { note("reconnecting " + ce.Error()) }
			s := dial(t, ctx, url, o)
			first := s.ID()
			echoOnce(t, ctx, s, "before")
			n.stall()
			echoOnce(t, ctx, s, "after")
			select {
			case <-resumed:
			case <-ctx.Done():
				t.Fatal("OnResumed was not called before the test's deadline")
			}
			if s.ID() != first {
				t.Errorf("ID() = %q after the resume, want %q: a resume keeps the session", s.ID(), first)
			}
			mu.Lock()
			defer mu.Unlock()
			// More than one resume may happen (a heartbeat of 100 ms under
			// -race), each OnResuming followed by its OnResumed.
			for i, e := range events {
				if want := []string{"resuming", "resumed"}[i%2]; e != want {
					t.Fatalf("callbacks %q, want resuming then resumed, in pairs", events)
				}
			}
		})
	}
}

// echoOnce sends text and waits for its echo.
func echoOnce(t *testing.T, ctx context.Context, s *client.Session, text string) {
	t.Helper()
	if err := s.Send(ctx, textMsg(text)); err != nil {
		t.Fatalf("Send(%q) = %v", text, err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != text {
		t.Fatalf("Recv() = %q, %v; want %q", m.Data, err, text)
	}
}
