package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// testTimeout bounds every blocking call a test makes.
const testTimeout = 20 * time.Second

// testConfig ticks and reports fast, so that the tests are short.
var testConfig = config{rate: 50, stats: 20 * time.Millisecond}

// startTicker runs the ticker with cfg on a loopback port until the test
// ends, and returns its page's URL.
func startTicker(t *testing.T, cfg config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", cfg, func(url string) { urls <- url }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(testTimeout):
			t.Errorf("run did not return within %v of its context's end", testTimeout)
		}
	})
	select {
	case url := <-urls:
		return url
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(testTimeout):
		t.Fatalf("the ticker did not listen within %v", testTimeout)
	}
	return ""
}

// message is any message the server sends: a Quote, Stats, the symbols
// or an error.
type message struct {
	Quote
	Symbols     []string       `json:"symbols"`
	Subscribers map[string]int `json:"subscribers"`
	Simulated   int            `json:"simulated"`
	Ticks       float64        `json:"ticks"`
	Deliveries  float64        `json:"deliveries"`
	Text        string         `json:"text"`
}

// subscriber is one Go client of the ticker.
type subscriber struct {
	t         *testing.T
	ctx       context.Context
	c         *client.Session
	transport string
}

// dial connects a subscriber over transport and checks that it is sent
// the symbols quoted first.
func dial(t *testing.T, ctx context.Context, url, transport string) *subscriber {
	t.Helper()
	c, err := client.Dial(ctx, url+"rt/", &client.Options{Transports: []string{transport}})
	if err != nil {
		t.Fatalf("Dial over %s: %v", transport, err)
	}
	t.Cleanup(func() { c.Close(wire.StatusNormalClosure, "") })
	s := &subscriber{t: t, ctx: ctx, c: c, transport: transport}
	if m := s.recv(); m.Type != "symbols" || !slices.Equal(m.Symbols, sortedSymbols()) {
		t.Fatalf("%s: first message %+v, want the symbols %v", transport, m, sortedSymbols())
	}
	return s
}

func (s *subscriber) request(req Request) {
	s.t.Helper()
	data, _ := json.Marshal(req)
	if err := s.c.Send(s.ctx, wire.Message{Type: wire.Text, Data: data}); err != nil {
		s.t.Fatalf("%s: Send: %v", s.transport, err)
	}
}

func (s *subscriber) recv() message {
	s.t.Helper()
	m, err := s.next()
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// recvAfterTicks returns the next message that is not a tick of sym: those
// published before the request that unsubscribed from sym may still come.
func (s *subscriber) recvAfterTicks(sym string) message {
	s.t.Helper()
	m := s.recv()
	for m.Type == "tick" && m.Symbol == sym {
		m = s.recv()
	}
	return m
}

// next returns the next message; it may be called from any goroutine.
func (s *subscriber) next() (message, error) {
	m, err := s.c.Recv(s.ctx)
	if err != nil {
		return message{}, fmt.Errorf("%s: Recv: %w", s.transport, err)
	}
	var msg message
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		return message{}, fmt.Errorf("%s: message %q: %w", s.transport, m.Data, err)
	}
	return msg, nil
}

// follow receives until each of want has had ticks ticks and a Stats has
// counted subscribers (when not nil) in each symbol's presence. It checks
// that each symbol starts with its last price and goes on with every tick
// in order, and that no other symbol comes. It may be called from any
// goroutine.
func (s *subscriber) follow(want []string, ticks int, subscribers map[string]int) error {
	seq := make(map[string]uint64) // the last seq seen of each symbol
	got := make(map[string]int)    // the ticks seen of each symbol
	counted := subscribers == nil
	for !counted || slices.ContainsFunc(want, func(sym string) bool { return got[sym] < ticks }) {
		m, err := s.next()
		if err != nil {
			return fmt.Errorf("%s: %w (ticks %v, presence counted: %v)", s.transport, err, got, counted)
		}
		switch m.Type {
		case "stats":
			counted = counted || maps.Equal(m.Subscribers, subscribers)
			continue
		case "last", "tick":
		default:
			return fmt.Errorf("%s: unexpected message %+v", s.transport, m)
		}
		if !slices.Contains(want, m.Symbol) {
			return fmt.Errorf("%s: got %s, subscribed to %v only", s.transport, m.Symbol, want)
		}
		last, started := seq[m.Symbol]
		switch {
		case m.Type == "last" && started:
			return fmt.Errorf("%s: %s: a second last price (seq %d after %d)", s.transport, m.Symbol, m.Seq, last)
		case m.Type == "tick" && !started:
			return fmt.Errorf("%s: %s: tick %d before the last price", s.transport, m.Symbol, m.Seq)
		case m.Type == "tick" && m.Seq != last+1:
			return fmt.Errorf("%s: %s: tick %d after %d", s.transport, m.Symbol, m.Seq, last)
		case m.Type == "tick":
			got[m.Symbol]++
		}
		seq[m.Symbol] = m.Seq
	}
	return nil
}

// TestEveryTransportGetsEveryTick subscribes two Go clients on each
// transport to two symbols each, and checks that each one gets the last
// price of its symbols, then every tick of them in order and nothing of
// another symbol, and that the statistics count them all in presence.
func TestEveryTransportGetsEveryTick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startTicker(t, testConfig)
	syms := sortedSymbols()
	subscribers := make(map[string]int)
	for _, sym := range syms {
		subscribers[sym] = 0
	}
	subs := make([]*subscriber, 2*len(transports))
	wants := make([][]string, len(subs))
	for i := range subs {
		subs[i] = dial(t, ctx, url, transports[i%len(transports)])
		wants[i] = []string{syms[i%len(syms)], syms[(i+2)%len(syms)]}
		subs[i].request(Request{Symbols: wants[i], Stats: true})
		for _, sym := range wants[i] {
			subscribers[sym]++
		}
	}
	errs := make(chan error, len(subs))
	for i, s := range subs {
		go func() { errs <- s.follow(wants[i], 20, subscribers) }()
	}
	for range subs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestRequestReplacesSymbols checks that a request unsubscribes the
// session from the symbols it no longer names: once the last price of the
// new symbol has come, none of the old one does.
func TestRequestReplacesSymbols(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startTicker(t, testConfig)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			s := dial(t, ctx, url, transport)
			s.request(Request{Symbols: []string{"ACME"}})
			if err := s.follow([]string{"ACME"}, 3, nil); err != nil {
				t.Fatal(err)
			}
			s.request(Request{Symbols: []string{"GLOBX"}})
			m := s.recvAfterTicks("ACME")
			if m.Symbol != "GLOBX" || m.Type != "last" {
				t.Fatalf("after ACME's ticks: %+v, want GLOBX's last price", m)
			}
			for seq := m.Seq + 1; seq <= m.Seq+3; seq++ {
				if m := s.recv(); m.Symbol != "GLOBX" || m.Type != "tick" || m.Seq != seq {
					t.Fatalf("after GLOBX's last price: %+v, want its tick %d", m, seq)
				}
			}
		})
	}
}

// TestBadRequests checks that a request the server cannot take is answered
// with an error and subscribes the session to nothing.
func TestBadRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startTicker(t, testConfig)
	s := dial(t, ctx, url, "websocket")
	// A symbol named twice is subscribed once: one last price.
	s.request(Request{Symbols: []string{"STARK", "STARK"}})
	if err := s.follow([]string{"STARK"}, 3, nil); err != nil {
		t.Fatal(err)
	}
	s.request(Request{})
	for _, bad := range []string{`not json`, `{"symbols":["ACME","NOPE"]}`, `{"symbols":["stats"]}`, `{"symbols":"ACME"}`} {
		if err := s.c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(bad)}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if m := s.recvAfterTicks("STARK"); m.Type != "error" || m.Text == "" {
			t.Errorf("request %s: answered %+v, want an error", bad, m)
		}
	}
	// Nothing was subscribed: the next message is the answer to a good
	// request.
	s.request(Request{Symbols: []string{"UMBRL"}})
	if m := s.recvAfterTicks("STARK"); m.Symbol != "UMBRL" || m.Type != "last" {
		t.Errorf("after the bad requests: %+v, want UMBRL's last price", m)
	}
}

// TestSimulatedSubscribers runs the ticker with simulated subscribers and
// checks that the statistics count them, in presence too, the ticks
// published and their deliveries.
func TestSimulatedSubscribers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const n = 12
	cfg := testConfig
	cfg.simulate = n
	url := startTicker(t, cfg)
	syms := sortedSymbols()
	want := make(map[string]int)
	for i := range n {
		want[syms[i%len(syms)]]++
		want[syms[(i+1)%len(syms)]]++
	}
	s := dial(t, ctx, url, "sse")
	s.request(Request{Stats: true})
	for {
		m := s.recv()
		if m.Type == "stats" && m.Simulated == n && m.Ticks > 0 && m.Deliveries > 0 && maps.Equal(m.Subscribers, want) {
			break
		}
	}
}
