package tether_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// ExampleNewServer mounts a Tether echo server on a plain net/http mux at
// /rt/, next to the application's own routes, and talks to it with the Go
// client. Browsers load the bundled client from /rt/tether.js.
func ExampleNewServer() {
	srv := tether.NewServer(tether.HandlerFunc(func(s *session.Session) {
		for { // one goroutine per session; returning closes it
			m, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			s.Send(s.Context(), m)
		}
	}), nil)

	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<script src="/rt/tether.js"></script>`)
	})

	hs := httptest.NewServer(mux) // http.ListenAndServe(addr, mux) in an application
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hs.URL+"/rt/", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(wire.StatusNormalClosure, "")
	c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("hello")})
	m, err := c.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Type, string(m.Data))
	// Output: text hello
}

// ExampleNewServer_stripPrefix mounts the server under a prefix that the
// mux strips: the server routes on the last path element, so it works
// either way.
func ExampleNewServer_stripPrefix() {
	srv := tether.NewServer(tether.HandlerFunc(func(s *session.Session) {
		s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte("welcome")})
		s.Recv(s.Context())
	}), &tether.Options{Transports: []string{"longpoll"}})

	mux := http.NewServeMux()
	mux.Handle("/app/live/", http.StripPrefix("/app", srv))

	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hs.URL+"/app/live/", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(wire.StatusNormalClosure, "")
	m, err := c.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Transport(), string(m.Data))
	// Output: longpoll welcome
}

// ExampleCallbacks serves a chat-like room with callbacks: no goroutine per
// session. Open greets and registers the session, Message relays to every
// member, Close unregisters.
func ExampleCallbacks() {
	var (
		mu      sync.Mutex
		members = map[*session.Session]bool{}
	)
	room := &tether.Callbacks{
		Open: func(s *session.Session) {
			mu.Lock()
			members[s] = true
			mu.Unlock()
			s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte("welcome")})
		},
		Message: func(s *session.Session, m wire.Message) {
			mu.Lock()
			defer mu.Unlock()
			for member := range members {
				member.Send(member.Context(), m) // never waits for the network
			}
		},
		Close: func(s *session.Session, err error) {
			mu.Lock()
			delete(members, s)
			mu.Unlock()
		},
	}
	srv := tether.NewServer(room, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hs.URL+"/", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(wire.StatusNormalClosure, "")
	c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("hi all")})
	for range 2 {
		m, err := c.Recv(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(m.Data))
	}
	// Output:
	// welcome
	// hi all
}
