package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

// serve is the server child: it listens on c.listen, prints "ready" on
// stdout, reports every c.report, and on SIGTERM shuts down and prints its
// summary. It reads "steady" on stdin when every session is up.
func serve(c *config) error {
	baseline := runtime.NumGoroutine()
	var warnings atomic.Int64
	logger := slog.New(countingHandler{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), &warnings})
	srv := tether.NewServer(tether.HandlerFunc(echo), &tether.Options{
		Transports:  c.transports,
		MaxSessions: c.sessions + 1000,
		Logger:      logger,
	})
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10, IdleTimeout: 2 * time.Minute}
	for _, addr := range strings.Split(c.listen, ",") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		go hs.Serve(ln)
	}
	fmt.Println("ready")

	steady := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "steady" {
				close(steady)
				return
			}
		}
	}()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	tick := time.NewTicker(c.report)
	defer tick.Stop()
	var runIn, last memory
	var steadyAt time.Time
	var peak uint64
	for {
		select {
		case <-steady:
			steady = nil
			steadyAt = time.Now()
		case <-tick.C:
			m := readMemory()
			peak = max(peak, m.heapLive)
			phase := "ramp"
			if !steadyAt.IsZero() {
				phase = "steady " + time.Since(steadyAt).Round(time.Second).String()
				// The run-in: the first reading a minute into the steady
				// state, once buffers and pools have found their size.
				if runIn.heapLive == 0 && time.Since(steadyAt) >= time.Minute {
					runIn = m
				}
				last = m
			}
			fmt.Printf("server: %-12s sessions %6d  goroutines %6d  live heap %10s  sys %10s  warnings %d\n",
				phase, srv.Sessions(), m.goroutines, mib(m.heapLive), mib(m.sys), warnings.Load())
		case <-term:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			hs.Close()
			if runIn.heapLive == 0 {
				runIn = last
			}
			growth := 0.0
			if runIn.heapLive > 0 {
				growth = float64(last.heapLive)/float64(runIn.heapLive) - 1
			}
			// Let the connections' goroutines see their sockets close.
			deadline := time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > baseline+2 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			after := runtime.NumGoroutine()
			flat := growth <= c.maxGrowth
			fmt.Printf("server summary: live heap after run-in %s, at end %s (%+.1f%%, flat: %v), peak %s; goroutines at start %d, at end with sessions %d, after shutdown %d (leak: %v); warnings %d; shutdown: %v\n",
				mib(runIn.heapLive), mib(last.heapLive), 100*growth, flat, mib(peak),
				baseline, last.goroutines, after, after > baseline+2, warnings.Load(), errOrOK(err))
			if !flat || after > baseline+2 || warnings.Load() > 0 || err != nil {
				return errors.New("server: soak failed")
			}
			return nil
		}
	}
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// echo sends every message back.
func echo(s *session.Session) {
	for {
		m, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		if s.Send(s.Context(), m) != nil {
			return
		}
	}
}

// countingHandler counts the records it passes on.
type countingHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	return h.Handler.Handle(ctx, r)
}
