package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// TestOnMessage: with Options.OnMessage, every message reaches the
// callback once, in order, one call at a time, on every transport; the
// callback may Send (here: the next message of a ping-pong); Recv returns
// only the session's end.
func TestOnMessage(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			const count = 300
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			base := startServer(t, echo, nil, nil)
			var (
				mu       sync.Mutex
				got      []string
				inFlight int
				overlap  bool
				done     = make(chan struct{})
				c        *client.Session
				ready    = make(chan struct{})
			)
			onMessage := func(m wire.Message) {
				<-ready // c is set
				mu.Lock()
				inFlight++
				overlap = overlap || inFlight > 1
				got = append(got, string(m.Data))
				n := len(got)
				mu.Unlock()
				if n < count {
					if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(fmt.Sprint(n))}); err != nil {
						t.Errorf("Send from the callback: %v", err)
					}
				} else if n == count {
					close(done)
				}
				mu.Lock()
				inFlight--
				mu.Unlock()
			}
			c = dial(t, ctx, base, &client.Options{Transports: []string{name}, OnMessage: onMessage})
			close(ready)
			if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("0")}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-ctx.Done():
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%d of %d echoes reached the callback", len(got), count)
			}
			mu.Lock()
			defer mu.Unlock()
			if overlap {
				t.Error("two callbacks ran at once")
			}
			for i, m := range got {
				if m != fmt.Sprint(i) {
					t.Fatalf("echo %d is %q", i, m)
				}
			}
			rctx, rcancel := context.WithTimeout(ctx, 0)
			defer rcancel()
			if m, err := c.Recv(rctx); err == nil {
				t.Errorf("Recv returned %q; with OnMessage it returns only the end", m.Data)
			}
		})
	}
}
