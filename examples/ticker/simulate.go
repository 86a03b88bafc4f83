package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// transports are the ones the simulated subscribers are spread over, in
// turn.
var transports = []string{"websocket", "sse", "streaming", "longpoll"}

// dialsAtOnce bounds the simulated subscribers connecting at the same time.
const dialsAtOnce = 32

// simulate connects n subscribers with the Go client to the Tether server
// at url, the i-th over transports[i%4] and subscribed to two symbols, and
// records the lag of every tick they receive in lm. It returns once ctx has
// ended and every subscriber is closed.
func simulate(ctx context.Context, url string, n int, lm *lagMeter, log *slog.Logger) {
	// One HTTP client for all, which keeps a connection per long poll
	// and per stream for the next request.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n + dialsAtOnce}}
	defer hc.CloseIdleConnections()
	syms := sortedSymbols()
	var (
		mu       sync.Mutex
		sessions []*client.Session // guarded by mu
		wg       sync.WaitGroup
	)
	slots := make(chan struct{}, dialsAtOnce)
dialing:
	for i := range n {
		select {
		case <-ctx.Done():
			break dialing
		case slots <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			want := Request{Symbols: []string{syms[i%len(syms)], syms[(i+1)%len(syms)]}}
			c, err := dialSubscriber(ctx, url, transports[i%len(transports)], hc, want, lm)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("simulated subscriber", "transport", transports[i%len(transports)], "err", err)
				}
				return
			}
			lm.connect(1)
			mu.Lock()
			sessions = append(sessions, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	log.Info("simulated subscribers dialled", "connected", len(sessions), "of", n)
	<-ctx.Done()
	for _, c := range sessions {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			c.Close(wire.StatusGoingAway, "")
			lm.connect(-1)
		}()
	}
	wg.Wait()
}

// dialSubscriber connects one simulated subscriber over transport and sends
// it want; every tick it receives goes to lm.
func dialSubscriber(ctx context.Context, url, transport string, hc *http.Client, want Request, lm *lagMeter) (*client.Session, error) {
	c, err := client.Dial(ctx, url, &client.Options{
		Transports: []string{transport},
		HTTPClient: hc,
		OnMessage: func(m wire.Message) {
			var q Quote
			if json.Unmarshal(m.Data, &q) == nil && q.Type == "tick" {
				lm.received(time.Since(time.UnixMicro(q.Time)))
			}
		},
	})
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(want)
	if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: data}); err != nil {
		c.Close(wire.StatusGoingAway, "")
		return nil, err
	}
	return c, nil
}
