package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/subscribers"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The server process serves the three systems side by side on one loopback
// listener: Tether under /tether/, a raw gorilla/websocket echo at /raw and
// sockjs-go under /sockjs/. Each echoes every message, answers "S:<n>" with
// n messages of streamPayload, and takes part in broadcasts ordered on
// /ctl/broadcast. /ctl/stats reports the process's memory and goroutines.

// Paths of the three systems.
const (
	tetherPrefix = "/tether/"
	rawPath      = "/raw"
	sockjsPrefix = "/sockjs"
)

// streamPayload is the 64-byte message of the one-way stream.
var streamPayload = bytes.Repeat([]byte("s"), 64)

// registry holds the sessions of one system that take part in broadcasts,
// in the order they joined: a broadcast loop goes over them in that order,
// as Tether's brokers deliver in the order sessions subscribed. Each
// session's memory was allocated when it connected, next to that of the
// sessions that connected around the same time, and a loop in that order
// misses the processor's caches far less than one in a map's order.
type registry[T comparable] struct {
	mu  sync.Mutex
	set subscribers.Set[T, struct{}]
}

func (r *registry[T]) add(v T) {
	r.mu.Lock()
	r.set.Add(v, struct{}{})
	r.mu.Unlock()
}

func (r *registry[T]) remove(v T) {
	r.mu.Lock()
	r.set.Remove(v)
	r.mu.Unlock()
}

func (r *registry[T]) list() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.AppendSeq(make([]T, 0, r.set.Len()), r.set.IDs())
}

// rawConn is a gorilla connection with a write lock: the echo loop and a
// broadcast may write at once.
type rawConn struct {
	mu sync.Mutex
	c  *ws.Conn
}

func (rc *rawConn) write(p []byte) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.c.WriteMessage(ws.TextMessage, p)
}

type benchServer struct {
	// cluster, if not nil, makes the Tether server a node of a cluster.
	cluster tether.Cluster
	// tether is the Tether server; every session it opens is subscribed
	// to broadcastTopic.
	tether         *tether.Server
	tetherSessions registry[*session.Session]
	rawConns       registry[*rawConn]
	sockjsSessions registry[sockjs.Session]
}

// streamCount returns n for a message "S:<n>".
func streamCount(p []byte) (int, bool) {
	if !bytes.HasPrefix(p, []byte("S:")) {
		return 0, false
	}
	n, err := strconv.Atoi(string(p[2:]))
	return n, err == nil
}

func (b *benchServer) handler() http.Handler {
	mux := http.NewServeMux()
	tsrv := tether.NewServer(b.tetherCallbacks(), &tether.Options{
		// The stream outruns the client's acknowledgements: wait, as
		// sockjs-go's unbounded buffer does, instead of closing.
		SlowConsumer: session.SlowConsumerBlock,
		MaxSessions:  1 << 20,
		Logger:       slog.New(slog.DiscardHandler),
		Cluster:      b.cluster,
	})
	b.tether = tsrv
	mux.Handle(tetherPrefix, tsrv)
	up := ws.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{}}
	mux.HandleFunc(rawPath, func(w http.ResponseWriter, r *http.Request) { b.serveRaw(&up, w, r) })
	opts := sockjs.DefaultOptions
	opts.WebsocketUpgrader = &ws.Upgrader{}
	mux.Handle(sockjsPrefix+"/", sockjs.NewHandler(sockjsPrefix, opts, b.serveSockJS))
	mux.HandleFunc("/ctl/stats", b.serveStats)
	mux.HandleFunc("/ctl/broadcast", b.serveBroadcast)
	mux.HandleFunc("/ctl/sessions", b.serveSessions)
	mux.Handle(pagePath, pageHandler())
	return mux
}

// tetherCallbacks serve the Tether sessions without a goroutine per
// session, as the raw gorilla echo does: an echo is written by the
// connection's reader. A stream request is served from a goroutine, since
// its Sends wait for the client's acknowledgements (SlowConsumerBlock),
// which the reader of a WebSocket would not read while in the callback.
func (b *benchServer) tetherCallbacks() *tether.Callbacks {
	return &tether.Callbacks{
		Open: func(s *session.Session) {
			// Subscribed before it counts as ready for a broadcast.
			if b.tether.Subscribe(s.Context(), s, broadcastTopic, nil) == nil {
				b.tetherSessions.add(s)
			}
		},
		Message: func(s *session.Session, m wire.Message) {
			ctx := s.Context()
			if n, ok := streamCount(m.Data); ok {
				go func() {
					for range n {
						if s.Send(ctx, wire.Message{Type: wire.Text, Data: streamPayload}) != nil {
							return
						}
					}
				}()
				return
			}
			s.Send(ctx, m)
		},
		Close: func(s *session.Session, err error) { b.tetherSessions.remove(s) },
	}
}

func (b *benchServer) serveRaw(up *ws.Upgrader, w http.ResponseWriter, r *http.Request) {
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	rc := &rawConn{c: c}
	b.rawConns.add(rc)
	defer b.rawConns.remove(rc)
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		if n, ok := streamCount(p); ok {
			for range n {
				if rc.write(streamPayload) != nil {
					return
				}
			}
			continue
		}
		if rc.write(p) != nil {
			return
		}
	}
}

func (b *benchServer) serveSockJS(s sockjs.Session) {
	b.sockjsSessions.add(s)
	defer b.sockjsSessions.remove(s)
	for {
		m, err := s.RecvCtx(s.Context())
		if err != nil {
			return
		}
		if n, ok := streamCount([]byte(m)); ok {
			p := string(streamPayload)
			for range n {
				if s.Send(p) != nil {
					return
				}
			}
			continue
		}
		if s.Send(m) != nil {
			return
		}
	}
}

// serverStats is what /ctl/stats answers, after a garbage collection.
type serverStats struct {
	RSS        int64 `json:"rss"`
	HeapAlloc  int64 `json:"heapAlloc"`
	StackInuse int64 `json:"stackInuse"`
	Goroutines int   `json:"goroutines"`
	Tether     int   `json:"tether"`
	Raw        int   `json:"raw"`
	SockJS     int   `json:"sockjs"`
}

func (b *benchServer) serveStats(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := serverStats{
		RSS:        readRSS(),
		HeapAlloc:  int64(ms.HeapAlloc),
		StackInuse: int64(ms.StackInuse),
		Goroutines: runtime.NumGoroutine(),
		Tether:     len(b.tetherSessions.list()),
		Raw:        len(b.rawConns.list()),
		SockJS:     len(b.sockjsSessions.list()),
	}
	json.NewEncoder(w).Encode(st)
}

// readRSS returns the process's resident set size in bytes, from
// /proc/self/status.
func readRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// broadcastMessage is 64 bytes: "B", the send time in Unix nanoseconds,
// padding.
func broadcastMessage(t time.Time) []byte {
	p := make([]byte, 0, 64)
	p = append(p, 'B')
	p = strconv.AppendInt(p, t.UnixNano(), 10)
	p = append(p, ' ')
	for len(p) < 64 {
		p = append(p, 'x')
	}
	return p
}

// parseBroadcast returns the send time of a broadcast message.
func parseBroadcast(p []byte) (int64, bool) {
	if len(p) < 2 || p[0] != 'B' {
		return 0, false
	}
	end := bytes.IndexByte(p, ' ')
	if end < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(p[1:end]), 10, 64)
	return n, err == nil
}

// tetherBroadcast says, for the report, how serveBroadcast hands a
// broadcast to the Tether sessions.
const tetherBroadcast = "Tether publishes it with `Server.Publish` to the topic every session is subscribed to"

// broadcastTopic is the topic of the Tether broadcasts.
const broadcastTopic = "bench.broadcast"

// serveBroadcast sends one message to every session of one system and
// answers once every send has returned.
func (b *benchServer) serveBroadcast(w http.ResponseWriter, r *http.Request) {
	sys := r.URL.Query().Get("sys")
	t0 := time.Now()
	msg := broadcastMessage(t0)
	n := 0
	switch sys {
	case "tether":
		m := wire.Message{Type: wire.Text, Data: msg}
		if err := b.tether.Publish(context.Background(), broadcastTopic, m, nil); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n = len(b.tetherSessions.list())
	case "raw":
		for _, c := range b.rawConns.list() {
			if c.write(msg) == nil {
				n++
			}
		}
	case "sockjs":
		str := string(msg)
		for _, s := range b.sockjsSessions.list() {
			if s.Send(str) == nil {
				n++
			}
		}
	default:
		http.Error(w, "unknown sys", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d %d\n", n, time.Since(t0).Nanoseconds())
}

// serveSessions answers how many sessions of one system take part in
// broadcasts. A client counts itself connected a moment before its server
// side has joined (the raw handler joins after its upgrade, sockjs-go's
// after its open frame): a broadcast waits for this count.
func (b *benchServer) serveSessions(w http.ResponseWriter, r *http.Request) {
	var n int
	switch r.URL.Query().Get("sys") {
	case "tether":
		n = len(b.tetherSessions.list())
	case "raw":
		n = len(b.rawConns.list())
	case "sockjs":
		n = len(b.sockjsSessions.list())
	default:
		http.Error(w, "unknown sys", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d\n", n)
}

// cpuProfileEnv names a file prefix: each server process writes a CPU
// profile to <prefix>.<pid>.
const cpuProfileEnv = "TETHER_BENCH_CPUPROFILE"

// runServer serves until the parent closes stdin; it prints its address
// on stdout first.
func runServer() error {
	raiseFileLimit()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b := &benchServer{}
	if url := os.Getenv(busEnv); url != "" {
		node, stop, err := joinCluster(url, os.Getenv(nodeNameEnv), os.Getenv(stateEnv))
		if err != nil {
			return err
		}
		defer stop()
		b.cluster = node
	}
	srv := &http.Server{Handler: b.handler()}
	go srv.Serve(ln)
	fmt.Printf("ADDR %s\n", ln.Addr())
	os.Stdout.Sync()
	if path := os.Getenv(cpuProfileEnv); path != "" {
		// Profile this server process, for finding what limits it.
		f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
		if err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	// The parent ends us by closing our stdin (or by killing us).
	buf := make([]byte, 1)
	os.Stdin.Read(buf)
	return nil
}
