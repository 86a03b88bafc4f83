// Command echo serves a page that talks to a Tether echo server: every
// message a browser sends comes back to it, over whichever transport the
// browser negotiated.
//
//	go run ./examples/echo -addr 127.0.0.1:8080
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	rt := tether.NewServer(tether.HandlerFunc(echo), nil)
	mux := http.NewServeMux()
	mux.Handle("/rt/", rt)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	hs := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.Shutdown(shutdown)
		hs.Shutdown(shutdown)
	}()
	slog.Info("echo example listening", "url", "http://"+*addr+"/")
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
}

// echo sends every message of a session back to it.
func echo(s *session.Session) {
	for {
		m, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		if err := s.Send(s.Context(), m); err != nil {
			return
		}
	}
}
