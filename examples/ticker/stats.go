package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/wire"
)

// Stats is what the statsTopic carries every stats interval (JSON, type
// "stats").
type Stats struct {
	Type        string         `json:"type"`        // "stats"
	Subscribers map[string]int `json:"subscribers"` // each symbol's subscribers (its topic's presence)
	Ticks       float64        `json:"ticks"`       // ticks published per second, of every symbol, over the last interval
	Simulated   int            `json:"simulated"`   // the simulated subscribers connected
	// Deliveries is the ticks the simulated subscribers received per
	// second over the last interval; LagP50 and LagP99 their lag in
	// milliseconds (time of receipt minus Quote.Time), 0 without ticks.
	Deliveries float64 `json:"deliveries"`
	LagP50     float64 `json:"lagP50"`
	LagP99     float64 `json:"lagP99"`
}

// lagMeter collects what the simulated subscribers receive. Its methods may
// be called concurrently.
type lagMeter struct {
	mu        sync.Mutex
	lags      []time.Duration // since the last take; guarded by mu
	connected int             // guarded by mu
}

// received records one tick received lag after it was made.
func (lm *lagMeter) received(lag time.Duration) {
	lm.mu.Lock()
	lm.lags = append(lm.lags, lag)
	lm.mu.Unlock()
}

// connect adds n (or, negative, removes) connected simulated subscribers.
func (lm *lagMeter) connect(n int) {
	lm.mu.Lock()
	lm.connected += n
	lm.mu.Unlock()
}

// take returns the lags recorded since the last take, sorted, and the
// subscribers connected.
func (lm *lagMeter) take() ([]time.Duration, int) {
	lm.mu.Lock()
	lags, connected := lm.lags, lm.connected
	lm.lags = make([]time.Duration, 0, len(lags))
	lm.mu.Unlock()
	slices.Sort(lags)
	return lags, connected
}

// reportStats publishes Stats on statsTopic every interval until ctx ends,
// and logs them when there are simulated subscribers.
func reportStats(ctx context.Context, srv *tether.Server, mk *Market, lm *lagMeter, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last, lastTicks := time.Now(), mk.Ticks()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := Stats{Type: "stats", Subscribers: make(map[string]int, len(symbols))}
			for sym := range symbols {
				members, err := srv.Presence(ctx, sym)
				if err != nil {
					return // ctx ended
				}
				st.Subscribers[sym] = len(members)
			}
			lags, connected := lm.take()
			st.Simulated = connected
			ticks, seconds := mk.Ticks(), now.Sub(last).Seconds()
			st.Ticks = float64(ticks-lastTicks) / seconds
			st.Deliveries = float64(len(lags)) / seconds
			last, lastTicks = now, ticks
			if len(lags) > 0 {
				st.LagP50 = millis(lags[len(lags)/2])
				st.LagP99 = millis(lags[len(lags)*99/100])
			}
			data, _ := json.Marshal(st)
			srv.Publish(ctx, statsTopic, wire.Message{Type: wire.Text, Data: data}, nil)
			if connected > 0 {
				log.Info("simulated subscribers", "connected", connected, "ticks/s", int(st.Ticks), "deliveries/s", int(st.Deliveries),
					"lag p50 ms", st.LagP50, "lag p99 ms", st.LagP99)
			}
		}
	}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
