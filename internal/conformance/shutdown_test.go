package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// startServer serves a Tether server with h at /rt/ on ln until the
// returned stop is called.
func startServer(h tether.Handler, opts *tether.Options, ln net.Listener) (srv *tether.Server, stop func()) {
	srv = tether.NewServer(h, opts)
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	return srv, func() {
		hs.Close()
		<-done
	}
}

// TestShutdown: clients on every offered transport, each with messages
// queued and not yet read, share one server. Shutdown delivers every queued
// message, then 1001, to each; it returns nil once done; no goroutine is
// left. The clients reconnect: 1001 says so, and a fresh Dial to a new
// server on the same address works.
func TestShutdown(t *testing.T) {
	transports := conformance.OfferedTransports(t) // its server ends with the test
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const queued = 300
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var ready sync.WaitGroup
	ready.Add(len(transports))
	h := tether.HandlerFunc(func(s *session.Session) {
		if _, err := s.Recv(s.Context()); err != nil { // "go"
			return
		}
		for i := range queued {
			if s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte(fmt.Sprint(i))}) != nil {
				return
			}
		}
		ready.Done()
		s.Recv(s.Context())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	base := "http://" + addr + "/rt/"
	srv, stop := startServer(h, &tether.Options{HeartbeatInterval: time.Second}, ln)

	var clients []*client.Session
	for _, name := range transports {
		// A small receive buffer: most of the messages wait in the
		// server's queue when Shutdown starts. DisableReconnect, so
		// that Recv returns the 1001 (TestShutdownReconnects checks
		// what the client does with it by default).
		c, err := client.Dial(ctx, base, &client.Options{Transports: []string{name}, RecvBuffer: 8, DisableReconnect: true})
		if err != nil {
			t.Fatalf("Dial(%s): %v", name, err)
		}
		clients = append(clients, c)
		if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("go")}); err != nil {
			t.Fatal(err)
		}
	}
	ready.Wait()

	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- srv.Shutdown(ctx) }()
	for i, c := range clients {
		for n := 0; ; n++ {
			m, err := c.Recv(ctx)
			if err != nil {
				code := wire.CloseStatus(err)
				if code != wire.StatusGoingAway || n != queued {
					t.Fatalf("%s: after %d of %d messages: %v, want close 1001 after all", transports[i], n, queued, err)
				}
				if !code.Reconnects() {
					t.Fatalf("%d does not tell the client to reconnect", code)
				}
				break
			}
			if string(m.Data) != fmt.Sprint(n) {
				t.Fatalf("%s: message %d is %q", transports[i], n, m.Data)
			}
		}
	}
	select {
	case err := <-shutdownErr:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown did not return")
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions left after Shutdown", n)
	}
	stop()
	for _, c := range clients {
		c.Close(wire.StatusNormalClosure, "")
	}

	// The clients reconnect: a new server on the same address.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv2, stop2 := startServer(conformance.Echo, nil, ln)
	defer stop2()
	for _, name := range transports {
		c, err := client.Dial(ctx, base, &client.Options{Transports: []string{name}})
		if err != nil {
			t.Fatalf("Dial(%s) after the restart: %v", name, err)
		}
		c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("again")})
		if m, err := c.Recv(ctx); err != nil || string(m.Data) != "again" {
			t.Fatalf("%s after the restart: Recv = %q, %v", name, m.Data, err)
		}
		c.Close(wire.StatusNormalClosure, "")
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := srv2.Shutdown(sctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestShutdownReconnects: by default a client whose server shuts down (1001)
// negotiates a new session by itself, here with a new server on the same
// address, and the application goes on with the same client.Session.
func TestShutdownReconnects(t *testing.T) {
	transports := conformance.OfferedTransports(t) // its server ends with the test
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	base := "http://" + addr + "/rt/"
	srv, stop := startServer(conformance.Echo, &tether.Options{HeartbeatInterval: time.Second}, ln)

	type reconnecting struct {
		c      *client.Session
		closes chan wire.CloseError // what OnReconnecting saw of a renegotiation
		first  string               // the first session's id
	}
	var clients []reconnecting
	for _, name := range transports {
		r := reconnecting{closes: make(chan wire.CloseError, 8)}
		r.c, err = client.Dial(ctx, base, &client.Options{
			Transports:     []string{name},
			OnReconnecting: func(ce wire.CloseError) { r.closes <- ce },
		})
		if err != nil {
			t.Fatalf("Dial(%s): %v", name, err)
		}
		r.first = r.c.ID()
		clients = append(clients, r)
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	stop()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv2, stop2 := startServer(conformance.Echo, nil, ln)
	defer stop2()
	for i, r := range clients {
		select {
		case ce := <-r.closes:
			if ce.Code != wire.StatusGoingAway {
				t.Errorf("%s: OnReconnecting saw %v, want 1001", transports[i], ce)
			}
		case <-ctx.Done():
			t.Fatalf("%s: OnReconnecting was not told of the 1001", transports[i])
		}
		if err := r.c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("again")}); err != nil {
			t.Fatalf("%s: Send after the restart: %v", transports[i], err)
		}
		if m, err := r.c.Recv(ctx); err != nil || string(m.Data) != "again" {
			t.Fatalf("%s after the restart: Recv = %q, %v", transports[i], m.Data, err)
		}
		if r.c.ID() == r.first {
			t.Errorf("%s: the session id did not change with the new session", transports[i])
		}
		r.c.Close(wire.StatusNormalClosure, "")
	}
	if err := srv2.Shutdown(sctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestShutdownContextEnds: a session whose client never attaches holds a
// graceful shutdown (for two heartbeat intervals); Shutdown returns when
// its context ends, with the context's error, and ends the session anyway.
func TestShutdownContextEnds(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, stop := startServer(conformance.Echo, &tether.Options{HeartbeatInterval: 10 * time.Second}, ln)
	defer stop()
	resp, err := http.Post("http://"+ln.Addr().String()+"/rt/negotiate?v=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want %v", err, context.DeadlineExceeded)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.Sessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions left after Shutdown's context ended", n)
	}
}
