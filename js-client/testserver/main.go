// Command testserver serves the pages the JavaScript client's browser tests
// drive: a Tether echo server, the bundled client, and a page that loads it.
// Every request goes through a TCP proxy (proxy.go), so that a message
// from the page can cut the connections in the middle of a stream.
//
// It prints "listening http://ADDR/" on stdout once it accepts connections
// and runs until its standard input closes or it gets SIGINT or SIGTERM.
//
// Endpoints:
//
//	/              an empty page that loads /tether.js (the global Tether)
//	/tether.js     the bundles, as the Server serves them
//	/tether.mjs
//	/rt/           the Tether server
//	/blocked/      the same server, but WebSocket handshakes answer 403, as
//	               behind a proxy that refuses Upgrade; negotiate still
//	               offers websocket
//	/buffered/     as /blocked/, and the sse and streaming responses are
//	               held back until they end, as by a buffering proxy
//	/split/        the same server, but send requests reach a second server
//	               that holds no session, as behind a balancer whose
//	               servers do not share sessions: they answer 404
//
// The session handler echoes every message, except these text commands:
//
//	stream N [CUT...]  send the text messages "1" .. "N", cutting every
//	                   connection through the proxy once the message
//	                   numbered by each CUT is queued
//	cut                cut every connection through the proxy
//	pause MS           hold all traffic through the proxy for MS milliseconds
//	down MS            cut every connection and refuse new ones for MS
//	                   milliseconds, as a network outage
//	close CODE REASON  close the session with a close frame
//	count              answer "count N", N the messages received so far
//	                   (including this one)
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherkit/tether"
	jsclient "github.com/tetherkit/tether/js-client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

const page = `<!doctype html>
<meta charset="utf-8">
<title>tether test</title>
<link rel="icon" href="data:,">
<script src="/tether.js"></script>
`

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "`address` the proxy listens on (loopback only)")
	transports := flag.String("transports", "", "comma-separated transports to offer (default: the server's default)")
	heartbeat := flag.Duration("heartbeat", 2*time.Second, "heartbeat interval")
	resume := flag.Duration("resume-window", 30*time.Second, "resume window")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("testserver: -addr %q: want a loopback address", *addr)
	}

	// The real server listens on its own port; the proxy listens on addr.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	px, err := newProxy(*addr, ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	opts := &tether.Options{
		HeartbeatInterval: *heartbeat,
		ResumeWindow:      *resume,
		// Below the default (1 MiB), so that the tests' bursts of a few
		// hundred KB cross the streams' byte limit several times.
		MaxStreamBytes: 128 << 10,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if *transports != "" {
		opts.Transports = strings.Split(*transports, ",")
	}
	srv := tether.NewServer(tether.HandlerFunc(func(s *session.Session) { handle(s, px) }), opts)
	other := tether.NewServer(tether.HandlerFunc(func(s *session.Session) { handle(s, px) }), opts)

	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	mux.Handle("/blocked/", http.StripPrefix("/blocked", refuseWebSocket(srv)))
	mux.Handle("/buffered/", http.StripPrefix("/buffered", refuseWebSocket(bufferStreams(srv))))
	mux.Handle("/split/", http.StripPrefix("/split", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/send") {
			other.ServeHTTP(w, r)
			return
		}
		srv.ServeHTTP(w, r)
	})))
	mux.HandleFunc("/tether.js", func(w http.ResponseWriter, r *http.Request) { jsclient.ServeHTTP(w, r, "tether.js") })
	mux.HandleFunc("/tether.mjs", func(w http.ResponseWriter, r *http.Request) { jsclient.ServeHTTP(w, r, "tether.mjs") })
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)

	fmt.Printf("listening http://%s/\n", px.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		stop()
	}()
	<-ctx.Done()

	px.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	other.Shutdown(sctx)
	hs.Shutdown(sctx)
}

// refuseWebSocket answers 403 to WebSocket handshakes and passes everything
// else to h.
func refuseWebSocket(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "websocket refused by the test proxy", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bufferStreams holds back the sse and streaming responses of h until h
// returns: their flushes do nothing.
func bufferStreams(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/sse") && !strings.HasSuffix(r.URL.Path, "/streaming") {
			h.ServeHTTP(w, r)
			return
		}
		bw := &bufferingWriter{header: http.Header{}}
		h.ServeHTTP(bw, r)
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		if bw.status != 0 {
			w.WriteHeader(bw.status)
		}
		w.Write(bw.body)
	})
}

// bufferingWriter is an http.ResponseWriter that keeps everything and whose
// Flush does nothing.
type bufferingWriter struct {
	header http.Header
	status int
	body   []byte
}

func (b *bufferingWriter) Header() http.Header { return b.header }
func (b *bufferingWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferingWriter) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	b.body = append(b.body, p...)
	return len(p), nil
}
func (b *bufferingWriter) Flush() {}

// handle echoes messages and runs the commands of the package comment.
func handle(s *session.Session, proxy *proxy) {
	ctx := s.Context()
	text := func(t string) error {
		return s.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(t)})
	}
	for n := 1; ; n++ {
		m, err := s.Recv(ctx)
		if err != nil {
			return
		}
		if m.Type == wire.Text {
			f := strings.Fields(string(m.Data))
			if len(f) > 0 {
				switch err, ok := command(s, proxy, text, f, n); {
				case !ok:
				case err != nil:
					if !errors.Is(err, context.Canceled) {
						text("error " + err.Error())
					}
					continue
				default:
					continue
				}
			}
		}
		if err := s.Send(ctx, m); err != nil {
			return
		}
	}
}

// command runs the command f; ok is false when f is no command (echo it).
func command(s *session.Session, proxy *proxy, text func(string) error, f []string, n int) (err error, ok bool) {
	nums := make([]int, 0, len(f))
	for _, a := range f[1:] {
		v, err := strconv.Atoi(a)
		if err != nil {
			if f[0] == "close" {
				break
			}
			return nil, false
		}
		nums = append(nums, v)
	}
	switch {
	case f[0] == "stream" && len(nums) >= 1:
		cuts := nums[1:]
		for i := 1; i <= nums[0]; i++ {
			if err := text(strconv.Itoa(i)); err != nil {
				return err, true
			}
			for len(cuts) > 0 && cuts[0] == i {
				cuts = cuts[1:]
				proxy.CutAll()
			}
		}
	case f[0] == "cut" && len(nums) == 0:
		proxy.CutAll()
	case f[0] == "pause" && len(nums) == 1:
		proxy.Pause()
		time.AfterFunc(time.Duration(nums[0])*time.Millisecond, proxy.Resume)
	case f[0] == "down" && len(nums) == 1:
		proxy.Down()
		time.AfterFunc(time.Duration(nums[0])*time.Millisecond, proxy.Up)
	case f[0] == "close" && len(nums) >= 1:
		s.Close(wire.StatusCode(nums[0]), strings.Join(f[2:], " "))
	case f[0] == "count" && len(nums) == 0:
		return text("count " + strconv.Itoa(n)), true
	default:
		return nil, false
	}
	return nil, true
}
