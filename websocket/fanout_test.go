package websocket_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// fanoutTopic is the topic every session of BenchmarkFanout is subscribed to.
const fanoutTopic = "fanout"

// fanoutSessions is how many WebSocket sessions BenchmarkFanout sends to.
const fanoutSessions = 1000

// fanoutReaders counts the messages that the clients of one fan-out have
// read, so that a round ends once every client has its message.
type fanoutReaders struct {
	got atomic.Int64
	wg  sync.WaitGroup // the readers, which stop when their connection closes
}

// waitFor waits until n messages have been read in all, for at most a
// minute.
func (r *fanoutReaders) waitFor(tb testing.TB, n int64) {
	deadline := time.Now().Add(time.Minute)
	for r.got.Load() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d messages read after a minute", r.got.Load(), n)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// read counts the messages arriving on c until it fails, acknowledging
// every 16th with an "a" frame (ack) when ack is set, as the Tether client
// does in a burst, so that the session's queue stays short.
func (r *fanoutReaders) read(c *ws.Conn, ack bool) {
	r.wg.Go(func() {
		var n uint64
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if ack && (len(p) == 0 || p[0] != 'm') {
				continue // an acknowledgement or a heartbeat
			}
			n++
			r.got.Add(1)
			if ack && n%16 == 0 {
				if c.WriteMessage(ws.TextMessage, wire.AppendAck(nil, n)) != nil {
					return
				}
			}
		}
	})
}

// tetherFanout is a Tether server with n WebSocket sessions attached, each
// read by a raw gorilla client.
type tetherFanout struct {
	srv      *tether.Server
	sessions []*session.Session
	readers  fanoutReaders
}

func startTetherFanout(tb testing.TB, n int) *tetherFanout {
	f := &tetherFanout{}
	opened := make(chan *session.Session, n)
	var srv *tether.Server
	srv = tether.NewServer(&tether.Callbacks{
		Open: func(s *session.Session) {
			if err := srv.Subscribe(s.Context(), s, fanoutTopic, nil); err != nil {
				tb.Error(err)
			}
			opened <- s
		},
		Message: func(*session.Session, wire.Message) {},
	}, &tether.Options{Logger: slog.New(slog.DiscardHandler), MaxSessions: 2 * n})
	f.srv = srv
	hs := httptest.NewServer(srv)
	var conns []*ws.Conn
	tb.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		f.readers.wg.Wait()
		srv.Close()
		hs.Close()
	})
	for range n {
		c, _, err := ws.DefaultDialer.Dial(negotiate(tb, hs.URL)+"&received=0", nil)
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, c)
		f.readers.read(c, true)
		f.sessions = append(f.sessions, <-opened)
	}
	return f
}

// gorillaFanout is a raw gorilla/websocket server with n connections, each
// read by a raw gorilla client: the limit a fan-out is measured against.
type gorillaFanout struct {
	conns   []*ws.Conn // the server's side
	readers fanoutReaders
}

func startGorillaFanout(tb testing.TB, n int) *gorillaFanout {
	f := &gorillaFanout{}
	accepted := make(chan *ws.Conn, n)
	up := ws.Upgrader{WriteBufferPool: &sync.Pool{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		accepted <- c
	}))
	var clients []*ws.Conn
	tb.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
		for _, c := range f.conns {
			c.Close()
		}
		f.readers.wg.Wait()
		hs.Close()
	})
	for range n {
		c, _, err := ws.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
		if err != nil {
			tb.Fatal(err)
		}
		clients = append(clients, c)
		f.readers.read(c, false)
		f.conns = append(f.conns, <-accepted)
	}
	return f
}

// BenchmarkFanout sends one 64-byte message to each of 1000 WebSocket
// sessions and waits until every client has read it, then does the same
// with raw gorilla/websocket (one goroutine writing to every connection, as
// a hand-written broadcast does), in the same iteration. It reports the
// time of each fan-out and their ratio; the ratio is what to compare
// between runs of a shared machine. The Tether sub-benchmarks differ in
// how the message is handed to the sessions: "publish" publishes it to the
// topic every session is subscribed to (Server.Publish: one copy of the
// message, queued to the sessions by GOMAXPROCS goroutines, and written by
// each connection's flush goroutine); "send-loop" calls Send for each
// session from one goroutine.
func BenchmarkFanout(b *testing.B) {
	t := startTetherFanout(b, fanoutSessions)
	g := startGorillaFanout(b, fanoutSessions)
	msg := []byte(strings.Repeat("x", 64))
	fanouts := []struct {
		name string
		send func(ctx context.Context, m wire.Message) error
	}{
		{"publish", func(ctx context.Context, m wire.Message) error {
			return t.srv.Publish(ctx, fanoutTopic, m, nil)
		}},
		{"send-loop", func(ctx context.Context, m wire.Message) error {
			for _, s := range t.sessions {
				if err := s.Send(ctx, m); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, fo := range fanouts {
		b.Run(fo.name, func(b *testing.B) {
			ctx := context.Background()
			m := wire.Message{Type: wire.Text, Data: msg}
			var tetherTime, gorillaTime time.Duration
			b.ReportAllocs()
			for b.Loop() {
				want := t.readers.got.Load() + fanoutSessions
				start := time.Now()
				if err := fo.send(ctx, m); err != nil {
					b.Fatal(err)
				}
				t.readers.waitFor(b, want)
				tetherTime += time.Since(start)

				want = g.readers.got.Load() + fanoutSessions
				start = time.Now()
				for _, c := range g.conns {
					if err := c.WriteMessage(ws.TextMessage, msg); err != nil {
						b.Fatal(err)
					}
				}
				g.readers.waitFor(b, want)
				gorillaTime += time.Since(start)
			}
			n := float64(b.N)
			b.ReportMetric(float64(tetherTime.Microseconds())/n/1000, "tether-ms/fanout")
			b.ReportMetric(float64(gorillaTime.Microseconds())/n/1000, "gorilla-ms/fanout")
			b.ReportMetric(float64(tetherTime)/float64(gorillaTime), "x-gorilla")
		})
	}
}
