package tether_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestCallbacksNeedNoGoroutine: sessions served by Callbacks add no
// goroutine of their own, where a Handler adds one each.
func TestCallbacksNeedNoGoroutine(t *testing.T) {
	const n = 50
	const slack = 3 // goroutines of HTTP connections that come and go
	cases := []struct {
		name    string
		handler tether.Handler
		want    int // goroutines per session
	}{
		{"Callbacks", &tether.Callbacks{Message: func(*session.Session, wire.Message) {}}, 0},
		{"HandlerFunc", tether.HandlerFunc(func(s *session.Session) { <-s.Context().Done() }), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := tether.NewServer(tc.handler, nil)
			hs := httptest.NewServer(srv)
			defer hs.Close()
			defer srv.Close()
			// One negotiate first, so that the HTTP connection's own
			// goroutines (client and server side) are counted before.
			negotiate(t, hs.URL+"/")
			before := settledGoroutines()
			for range n - 1 {
				negotiate(t, hs.URL+"/")
			}
			want := tc.want * (n - 1)
			if got := goroutinesAdded(before, want); got > want+slack || got < want-slack {
				t.Fatalf("%d sessions added %d goroutines, want %d", n-1, got, want)
			}
		})
	}
}

// TestCallbacksOrderAndClose runs Callbacks over every transport: Open may
// send, Message sees every message in order, one at a time, and Close is
// called once, after the last Message, with the session's CloseError.
func TestCallbacksOrderAndClose(t *testing.T) {
	for _, name := range []string{"websocket", "sse", "streaming", "longpoll"} {
		t.Run(name, func(t *testing.T) {
			const count = 500
			var (
				mu       sync.Mutex
				inFlight int
				got      []string
				closed   = make(chan error, 2)
				overlap  bool
			)
			cb := &tether.Callbacks{
				Open: func(s *session.Session) {
					s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte("hello")})
				},
				Message: func(s *session.Session, m wire.Message) {
					mu.Lock()
					inFlight++
					overlap = overlap || inFlight > 1
					got = append(got, string(m.Data))
					mu.Unlock()
					if string(m.Data) == fmt.Sprint(count-1) {
						s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte("done")})
					}
					mu.Lock()
					inFlight--
					mu.Unlock()
				},
				Close: func(s *session.Session, err error) {
					mu.Lock()
					n := len(got)
					mu.Unlock()
					if n != count {
						err = fmt.Errorf("closed after %d messages: %v", n, err)
					}
					closed <- err
				},
			}
			srv := tether.NewServer(cb, nil)
			hs := httptest.NewServer(srv)
			defer hs.Close()
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, hs.URL+"/", &client.Options{Transports: []string{name}})
			if err != nil {
				t.Fatal(err)
			}
			if m, err := c.Recv(ctx); err != nil || string(m.Data) != "hello" {
				t.Fatalf("first Recv = %q, %v; want Open's hello", m.Data, err)
			}
			for i := range count {
				if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(fmt.Sprint(i))}); err != nil {
					t.Fatal(err)
				}
			}
			if m, err := c.Recv(ctx); err != nil || string(m.Data) != "done" {
				t.Fatalf("Recv = %q, %v; want done", m.Data, err)
			}
			c.Close(wire.StatusCode(4100), "bye")
			select {
			case err := <-closed:
				var ce wire.CloseError
				if !asCloseError(err, &ce) || ce.Code != 4100 || ce.Reason != "bye" {
					t.Fatalf("Close got %v, want the client's close 4100 bye", err)
				}
			case <-ctx.Done():
				t.Fatal("Close was not called")
			}
			mu.Lock()
			defer mu.Unlock()
			if overlap {
				t.Fatal("two Message calls ran at once")
			}
			for i, m := range got {
				if m != fmt.Sprint(i) {
					t.Fatalf("message %d is %q", i, m)
				}
			}
			select {
			case err := <-closed:
				t.Fatalf("Close called twice (again with %v)", err)
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
}

func asCloseError(err error, ce *wire.CloseError) bool {
	c, ok := err.(wire.CloseError)
	if ok {
		*ce = c
	}
	return ok
}

// TestIdleWebSocketSessionHoldsOneGoroutine: an attached WebSocket session
// served by Callbacks holds one goroutine, its connection's reader, once
// its traffic has gone out: no writer waits while there is nothing to
// write.
func TestIdleWebSocketSessionHoldsOneGoroutine(t *testing.T) {
	const n = 40
	const slack = 3
	echo := &tether.Callbacks{Message: func(s *session.Session, m wire.Message) { s.Send(s.Context(), m) }}
	srv := tether.NewServer(echo, &tether.Options{HeartbeatInterval: time.Minute})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	base := hs.URL + "/"
	negotiate(t, base) // the keep-alive connection's goroutines count before
	before := settledGoroutines()
	conns := make([]*ws.Conn, n)
	for i := range conns {
		nt := negotiate(t, base)
		u := "ws" + strings.TrimPrefix(base, "http") + fmt.Sprintf("websocket?session=%s&token=%s&received=0&seq=1", nt.Session, nt.Token)
		c, _, err := ws.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		// One echo each: the flush that writes it must end afterwards.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(ws.TextMessage, []byte("mhi")); err != nil {
			t.Fatal(err)
		}
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if string(p) == "mhi" {
				break
			}
		}
	}
	if got := goroutinesAdded(before, n); got > n+slack || got < n-slack {
		t.Fatalf("%d idle WebSocket sessions hold %d goroutines, want %d (one each)", n, got, n)
	}
}

// settledGoroutines returns the number of goroutines once it has stopped
// changing (goroutines of finished HTTP exchanges end a moment after the
// exchange), waiting at most 5 seconds.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// goroutinesAdded returns how many goroutines there are beyond before,
// once that is at most want or the count has settled.
func goroutinesAdded(before, want int) int {
	if got := runtime.NumGoroutine() - before; got <= want {
		return got
	}
	return settledGoroutines() - before
}
