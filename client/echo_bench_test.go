package client_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// BenchmarkEcho measures round trips of 64-byte text messages, client and
// server in one process over loopback, 8 sessions at a time: the cost per
// round trip (time, allocations) of both sides of each HTTP transport.
//
//	go test -run '^$' -bench Echo -benchmem ./client/
func BenchmarkEcho(b *testing.B) {
	for _, name := range []string{"sse", "streaming", "longpoll"} {
		b.Run(name, func(b *testing.B) { benchEcho(b, name) })
	}
}

func benchEcho(b *testing.B, name string) {
	const clients = 8
	url := startBenchServer(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	ctx := context.Background()
	var sessions []*client.Session
	for range clients {
		s, err := client.Dial(ctx, url, &client.Options{Transports: []string{name}, HTTPClient: hc,
			Logger: slog.New(slog.DiscardHandler), ConnectTimeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	defer func() {
		for _, s := range sessions {
			s.Close(wire.StatusNormalClosure, "")
		}
	}()
	msg := wire.Message{Type: wire.Text, Data: make([]byte, 64)}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, s := range sessions {
		n := b.N / clients
		if i < b.N%clients {
			n++
		}
		wg.Go(func() {
			for range n {
				if err := s.Send(ctx, msg); err != nil {
					b.Error(err)
					return
				}
				if _, err := s.Recv(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// startBenchServer runs an echo server under /rt/ on 127.0.0.1 until the
// benchmark ends and returns its prefix URL.
func startBenchServer(b *testing.B) string {
	srv := tether.NewServer(tether.HandlerFunc(echo), &tether.Options{Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	ts := httptest.NewServer(mux)
	b.Cleanup(func() {
		srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL + "/rt/"
}
