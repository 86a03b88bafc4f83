package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// symbols are the instruments the market quotes, each published on the
// topic of the same name; their opening prices in cents.
var symbols = map[string]int64{
	"ACME":  12000,
	"GLOBX": 4550,
	"INITC": 8725,
	"UMBRL": 31010,
	"STARK": 99900,
}

// sortedSymbols returns the market's symbols in alphabetical order.
func sortedSymbols() []string {
	s := make([]string, 0, len(symbols))
	for sym := range symbols {
		s = append(s, sym)
	}
	slices.Sort(s)
	return s
}

// Quote is one price of a symbol, as the page and the simulated subscribers
// receive it (JSON, type "tick" or "last").
type Quote struct {
	Type   string `json:"type"`   // "tick" for a new price, "last" for the price a subscriber gets on subscribing
	Symbol string `json:"symbol"` // one of symbols
	Seq    uint64 `json:"seq"`    // the number of the symbol's tick, from 1, one more per tick
	Cents  int64  `json:"cents"`  // the price in cents
	Time   int64  `json:"time"`   // when the tick was made, in microseconds since the Unix epoch: the subscriber's lag is its clock minus this
}

// Request is what a session sends to choose its symbols: it is then
// subscribed to exactly those (and unsubscribed from the others), and, with
// Stats, to the statsTopic.
type Request struct {
	Symbols []string `json:"symbols"`
	Stats   bool     `json:"stats"`
}

// statsTopic carries the market's statistics (Stats) to the sessions that
// ask for them.
const statsTopic = "stats"

// Market makes the prices and publishes each tick on its symbol's topic.
// Its methods may be called concurrently.
type Market struct {
	srv *tether.Server

	// mu orders ticks and subscriptions: a tick is made and published, and
	// a session subscribed and sent its symbol's last price, each while
	// holding mu, so a subscriber receives the last price, then every
	// tick after it, none twice.
	mu    sync.Mutex
	last  map[string]Quote // each symbol's last tick; guarded by mu
	rng   *rand.Rand       // guarded by mu
	ticks uint64           // ticks published, of every symbol; guarded by mu
}

// NewMarket returns a market whose ticks srv publishes.
func NewMarket(srv *tether.Server) *Market {
	mk := &Market{srv: srv, last: make(map[string]Quote, len(symbols)), rng: rand.New(rand.NewPCG(1, 2))}
	for sym, cents := range symbols {
		mk.last[sym] = Quote{Type: "tick", Symbol: sym, Cents: cents, Time: time.Now().UnixMicro()}
	}
	return mk
}

// Run makes a tick of every symbol every interval until ctx ends.
func (mk *Market) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for sym := range symbols {
				mk.tick(ctx, sym)
			}
		}
	}
}

// tick moves the price of sym by up to half a percent and publishes it.
func (mk *Market) tick(ctx context.Context, sym string) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	q := mk.last[sym]
	step := q.Cents / 200
	q.Cents = max(1, q.Cents+mk.rng.Int64N(2*step+1)-step)
	q.Seq++
	q.Time = time.Now().UnixMicro()
	mk.last[sym] = q
	mk.ticks++
	data, _ := json.Marshal(q)
	mk.srv.Publish(ctx, sym, wire.Message{Type: wire.Text, Data: data}, nil)
}

// Open is the sessions' Open callback: it sends the symbols quoted
// (JSON {"type":"symbols","symbols":[...]}).
func (mk *Market) Open(s *session.Session) {
	data, _ := json.Marshal(map[string]any{"type": "symbols", "symbols": sortedSymbols()})
	s.Send(s.Context(), wire.Message{Type: wire.Text, Data: data})
}

// Ticks returns the number of ticks published so far, of every symbol.
// Under load it grows slower than the rate asks: a tick is published to
// every subscriber before the next one is made.
func (mk *Market) Ticks() uint64 {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	return mk.ticks
}

// Handle is the sessions' Message callback: a Request sets the session's
// symbols; anything else is answered with an error and changes nothing.
func (mk *Market) Handle(s *session.Session, m wire.Message) {
	var req Request
	if m.Type != wire.Text || json.Unmarshal(m.Data, &req) != nil {
		sendError(s, `not a request: send {"symbols":["ACME",...],"stats":true}`)
		return
	}
	for _, sym := range req.Symbols {
		if _, ok := symbols[sym]; !ok {
			sendError(s, "unknown symbol "+sym)
			return
		}
	}
	slices.Sort(req.Symbols)
	req.Symbols = slices.Compact(req.Symbols) // one last price per symbol
	ctx := s.Context()
	for sym := range symbols {
		if !slices.Contains(req.Symbols, sym) {
			mk.srv.Unsubscribe(ctx, s, sym)
		}
	}
	if req.Stats {
		mk.srv.Subscribe(ctx, s, statsTopic, nil)
	} else {
		mk.srv.Unsubscribe(ctx, s, statsTopic)
	}
	subscribed := mk.srv.Topics(s)
	for _, sym := range req.Symbols {
		if !slices.Contains(subscribed, sym) {
			mk.subscribe(s, sym)
		}
	}
}

// subscribe subscribes s to sym and sends it sym's last price, before any
// later tick.
func (mk *Market) subscribe(s *session.Session, sym string) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if mk.srv.Subscribe(s.Context(), s, sym, nil) != nil {
		return // s has closed
	}
	q := mk.last[sym]
	q.Type = "last"
	data, _ := json.Marshal(q)
	s.Send(s.Context(), wire.Message{Type: wire.Text, Data: data})
}

// sendError tells the session what was wrong with its request.
func sendError(s *session.Session, text string) {
	data, _ := json.Marshal(map[string]string{"type": "error", "text": text})
	s.Send(s.Context(), wire.Message{Type: wire.Text, Data: data})
}
