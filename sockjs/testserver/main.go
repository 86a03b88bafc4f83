// Command testserver serves the page the SockJS bridge's browser tests
// drive: sockjs-client (from the test's node_modules) and a Tether server
// whose SockJS clients come through the bridge.
//
// It prints "listening http://ADDR/" on stdout once it accepts connections
// and runs until its standard input closes or it gets SIGINT or SIGTERM.
//
// Endpoints:
//
//	/                 an empty page that loads /sockjs.min.js (the global SockJS)
//	/sockjs.min.js    sockjs-client's bundle, from -client
//	/sockjs/          the bridge
//
// The session handler echoes every message, except these text commands:
//
//	transport          answer "transport NAME", NAME the session's Transport()
//	binary             send the binary message 0x00 0x01 0x02 0xff
//	close CODE REASON  close the session with CODE and REASON
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/sockjs"
	"github.com/tetherkit/tether/wire"
)

const page = `<!doctype html>
<meta charset="utf-8">
<title>sockjs bridge test</title>
<link rel="icon" href="data:,">
<script src="/sockjs.min.js"></script>
`

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	client := flag.String("client", "sockjs/test/node_modules/sockjs-client/dist/sockjs.min.js", "sockjs-client's bundle")
	flag.Parse()

	rt := tether.NewServer(tether.HandlerFunc(serve), &tether.Options{HeartbeatInterval: 5 * time.Second})
	mux := http.NewServeMux()
	mux.Handle("/sockjs/", sockjs.New(rt, "/sockjs", nil))
	mux.HandleFunc("/sockjs.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, *client)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
	if _, err := os.Stat(*client); err != nil {
		log.Fatalf("testserver: %v (run npm ci in sockjs/test)", err)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	fmt.Printf("listening http://%s/\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		bufio.NewReader(os.Stdin).ReadString(0) // until stdin closes
		stop()
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt.Shutdown(sctx)
	hs.Shutdown(sctx)
}

func serve(s *session.Session) {
	ctx := s.Context()
	for {
		m, err := s.Recv(ctx)
		if err != nil {
			return
		}
		text := string(m.Data)
		switch {
		case text == "transport":
			m = wire.Message{Type: wire.Text, Data: []byte("transport " + s.Transport())}
		case text == "binary":
			m = wire.Message{Type: wire.Binary, Data: []byte{0, 1, 2, 0xff}}
		case strings.HasPrefix(text, "close "):
			f := strings.SplitN(text, " ", 3)
			code, _ := strconv.Atoi(f[1])
			reason := ""
			if len(f) == 3 {
				reason = f[2]
			}
			s.Close(wire.StatusCode(code), reason)
			return
		}
		if s.Send(ctx, m) != nil {
			return
		}
	}
}
