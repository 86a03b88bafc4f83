// Command hostileserver runs one setup of package hostile (real nginx in
// front of Tether echo servers) for the Chromium suite in
// js-client/test/hostile. It prints "listening http://ADDR/" once nginx
// accepts connections; ADDR/ serves a page that loads the client from
// ADDR/rt/tether.js, and ADDR/rt/ is the Tether prefix.
//
// It reads commands from its standard input, one a line:
//
//	outage MS        stop nginx, print "outage started", start it again on
//	                 the same port MS milliseconds later, print "outage over"
//	pass-websocket   in a setup that refuses WebSocket upgrades at first
//	                 (hiccup), pass them from now on, print "websocket passed"
//
// and stops when its standard input closes or on SIGINT or SIGTERM.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherkit/tether/internal/hostile"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback `address` nginx listens on (port 0: a free one)")
	name := flag.String("setup", "plain", "the setup to run (see package hostile)")
	readme := flag.String("readme", "README.md", "`path` of README.md, whose nginx block the setups change")
	flag.Parse()

	setup, err := hostile.Lookup(*name)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "tether-hostile-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env, err := hostile.Start(setup, *readme, *addr, dir, logger)
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	fmt.Printf("listening %s\n", env.Page)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		defer stop()
		for in := bufio.NewScanner(os.Stdin); in.Scan(); {
			if in.Text() == "pass-websocket" {
				if err := env.PassWebSocket(); err != nil {
					log.Printf("hostileserver: %v", err)
					return
				}
				fmt.Println("websocket passed")
				continue
			}
			ms, ok := strings.CutPrefix(in.Text(), "outage ")
			d, err := strconv.Atoi(ms)
			if !ok || err != nil {
				log.Printf("hostileserver: unknown command %q", in.Text())
				continue
			}
			env.Nginx.Stop()
			fmt.Println("outage started")
			time.Sleep(time.Duration(d) * time.Millisecond)
			if err := env.Nginx.Restart(); err != nil {
				log.Printf("hostileserver: %v", err)
				return
			}
			fmt.Println("outage over")
		}
	}()
	<-ctx.Done()
}
