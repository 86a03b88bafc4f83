// Command demo compares Tether's transports side by side in the browser.
//
//	go run ./examples/demo            # http://127.0.0.1:8080/
//	go run ./examples/demo -addr 127.0.0.1:9000
//
// The page opens one session per transport (WebSocket, SSE, streaming, long
// polling, and the client's automatic choice), one after the other, and
// measures for each: the time to connect, round-trip latency (p50, p99 and a
// histogram), messages per second, bytes on the wire per message, the HTTP
// requests made, and, after the server cuts the TCP connection under the
// session, the time to resume and the messages lost (always zero).
//
// Bytes and requests are counted on the server, below HTTP: the listener's
// connections are wrapped (meter.go). The binary serves everything the page
// needs, the client bundle and the charts included; nothing comes from
// elsewhere.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

//go:embed web
var web embed.FS

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`address` to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, func(url string) {
		fmt.Println("listening " + url)
	}); err != nil {
		slog.Error("demo", "err", err)
		os.Exit(1)
	}
}

// run serves the demo on addr until ctx ends, then shuts down. It calls
// ready with the page's URL once it accepts connections.
func run(ctx context.Context, addr string, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	m := newMeter()
	rt := newServer(m)
	hs := &http.Server{
		Handler:           routes(rt, m),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       m.connContext,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(m.listen(ln)) }()
	ready("http://" + ln.Addr().String() + "/")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt.Shutdown(shutdown)
	if err := hs.Shutdown(shutdown); err != nil {
		hs.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newServer returns the demo's Tether server: every transport, default
// settings, and the session handler of app.go.
func newServer(m *meter) *tether.Server {
	return tether.NewServer(tether.HandlerFunc(func(s *session.Session) {
		defer m.forget(s.ID())
		serve(s)
	}), &tether.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

// routes serves the page at /, the Tether server (and the client bundle)
// under /rt/, and the meter's two endpoints:
//
//	GET  /demo/stats?session=ID  {"bytesIn":…,"bytesOut":…,"requests":…}
//	POST /demo/cut?session=ID    {"cut":N}: the connections closed
func routes(rt *tether.Server, m *meter) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/rt/", m.wrap(rt))
	static, _ := fs.Sub(web, "web")
	mux.Handle("/", noCache(http.FileServerFS(static)))
	mux.HandleFunc("GET /demo/stats", func(w http.ResponseWriter, r *http.Request) {
		st, ok := m.stats(r.URL.Query().Get("session"))
		if !ok {
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		}
		writeJSON(w, st)
	})
	mux.HandleFunc("POST /demo/cut", func(w http.ResponseWriter, r *http.Request) {
		n, ok := m.cut(r.URL.Query().Get("session"))
		if !ok {
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		}
		writeJSON(w, map[string]int{"cut": n})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// noCache makes the browser revalidate the page's files, so that a rebuilt
// demo is picked up at once.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
