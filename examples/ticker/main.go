// Command ticker is the live-prices case of topics: a market makes a price
// tick for each of a few symbols several times a second and publishes it
// once, on the symbol's topic, to every session subscribed to it, however
// many there are.
//
//	go run ./examples/ticker                    # http://127.0.0.1:8081/
//	go run ./examples/ticker -simulate 2000     # and 2000 subscribers in-process
//	go run ./examples/ticker -rate 20 -addr 127.0.0.1:9000
//
// The page asks for the symbols it shows (a Request); the server checks
// them and subscribes the session (Market.Handle), which first receives each
// symbol's last price, then every tick after it. The page shows the
// transport it is on, each symbol's subscribers (the topic's presence) and,
// with -simulate, the ticks the simulated subscribers receive per second and
// their lag, which the log prints as well.
//
// The simulated subscribers are Go clients (package client) spread over
// the four transports, two symbols each.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

//go:embed index.html
var page []byte

// config is what the flags set.
type config struct {
	rate     float64       // ticks per second of each symbol
	stats    time.Duration // between two Stats
	simulate int           // simulated subscribers
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "`address` to listen on")
	var cfg config
	flag.Float64Var(&cfg.rate, "rate", 5, "price ticks per second of each symbol")
	flag.IntVar(&cfg.simulate, "simulate", 0, "`N` subscribers to start in-process (Go clients over every transport)")
	flag.DurationVar(&cfg.stats, "stats", time.Second, "time between two statistics reports")
	flag.Parse()
	if cfg.rate <= 0 || cfg.stats <= 0 || cfg.simulate < 0 {
		fmt.Fprintln(os.Stderr, "ticker: -rate and -stats must be positive, -simulate at least 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, cfg, func(url string) { fmt.Println("listening " + url) }); err != nil {
		slog.Error("ticker", "err", err)
		os.Exit(1)
	}
}

// run serves the ticker on addr until ctx ends, then shuts down. It calls
// ready with the page's URL once it accepts connections.
func run(ctx context.Context, addr string, cfg config, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, mk := newServer()
	hs := &http.Server{Handler: routes(srv), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/"
	ready(url)

	work, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	lm := &lagMeter{}
	wg.Go(func() { mk.Run(work, time.Duration(float64(time.Second)/cfg.rate)) })
	wg.Go(func() { reportStats(work, srv, mk, lm, cfg.stats, log) })
	if cfg.simulate > 0 {
		wg.Go(func() { simulate(work, url+"rt/", cfg.simulate, lm, log) })
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	stopWork()
	wg.Wait() // the simulated subscribers are closed
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown) // sessions first: their clients are told to reconnect
	if err := hs.Shutdown(shutdown); err != nil {
		hs.Close()
	}
	if err == nil {
		err = <-errc
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newServer returns the Tether server, whose sessions are sent the symbols
// quoted and choose theirs with a Request, and the market that publishes through it.
func newServer() (*tether.Server, *Market) {
	var mk *Market
	srv := tether.NewServer(&tether.Callbacks{
		Open:    func(s *session.Session) { mk.Open(s) },
		Message: func(s *session.Session, m wire.Message) { mk.Handle(s, m) },
	}, &tether.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	mk = NewMarket(srv)
	return srv, mk
}

// routes serves the page at / and the Tether server (and the client
// bundle, /rt/tether.js) under /rt/.
func routes(srv *tether.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(page)
	})
	return mux
}
