package clustertest_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/wire"
)

// publishes is how many messages each node's publisher publishes in
// TestTopics.
const publishes = 1000

// subscriber is a session subscribed to the topic, and what it received
// of each publisher.
type subscriber struct {
	*conn
	from map[string]*tally // by publisher (the name of its node)
	err  error
}

// subscribe subscribes cn to topic through the echo service's command.
func subscribe(t *testing.T, cn *conn, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dialBound)
	defer cancel()
	if err := cn.c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("subscribe " + topic)}); err != nil {
		t.Fatalf("%s: subscribe: %v", cn.transport, err)
	}
	m, err := cn.c.Recv(ctx)
	if err != nil || string(m.Data) != "subscribed "+topic {
		t.Fatalf("%s: subscribe answered %q, %v; want %q", cn.transport, m.Data, err, "subscribed "+topic)
	}
}

// TestTopics: on each bus, sessions held by every node, on every
// transport, and one per transport through nginx's round robin (relayed),
// subscribe to one topic; a session on each node publishes to it. Every
// subscriber receives every publish once, in each publisher's order.
func TestTopics(t *testing.T) {
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) {
			t.Parallel()
			e := startCluster(t, bus)
			var subs []*subscriber
			publishers := map[string]*conn{} // by node name
			for _, n := range e.nodes {
				for _, tr := range transports {
					cn := dial(t, strings.Replace(e.url, e.nginx.Addr, n.Addr, 1), tr)
					subs = append(subs, &subscriber{conn: cn})
					if publishers[n.Name] == nil {
						publishers[n.Name] = cn
					}
				}
			}
			for _, tr := range transports {
				subs = append(subs, &subscriber{conn: dial(t, e.url, tr)})
			}
			for _, s := range subs {
				subscribe(t, s.conn, "news")
			}
			began := time.Now()
			var wg sync.WaitGroup
			for _, s := range subs {
				wg.Go(func() { s.err = s.receive(len(publishers)) })
			}
			for name, p := range publishers {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), stallBound)
					defer cancel()
					for i := 1; i <= publishes; i++ {
						if err := p.c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(fmt.Sprintf("publish news %s %d", name, i))}); err != nil {
							t.Errorf("publisher on %s: Send: %v", name, err)
							return
						}
					}
				})
			}
			wg.Wait()
			took := time.Since(began)
			perTransport := map[string]*row{}
			for _, s := range subs {
				r := perTransport[s.transport]
				if r == nil {
					r = &row{bus: bus, transport: s.transport, scenario: "topics, 3 publishers", took: took}
					perTransport[s.transport] = r
				}
				if s.err != nil {
					t.Errorf("%s subscriber %s: %v", s.transport, s.c.ID(), s.err)
				}
				for name := range publishers {
					tl := s.from[name]
					if tl == nil {
						tl = &tally{}
					}
					tl.n = publishes
					if !tl.exact() {
						t.Errorf("%s subscriber %s, publisher on %s: received %d of %d, lost %d, duplicated %d, reordered %d; want each once, in order",
							s.transport, s.c.ID(), name, tl.distinct, tl.n, tl.lost(), tl.dup, tl.reordered)
					}
					r.sent += tl.n
					r.received += tl.received
					r.lost += tl.lost()
					r.duplicated += tl.dup
					r.reordered += tl.reordered
				}
				r.resumes += s.resumes.Load()
				r.failed += s.failed.Load()
				if c := s.closes(s.err); c != "" {
					r.closes = strings.TrimSpace(r.closes + " " + c)
				}
			}
			for _, tr := range transports {
				record(t, *perTransport[tr])
			}
		})
	}
}

// receive receives "<publisher> <i>" until it has i = publishes from each
// of publishers publishers, the session ends, or nothing comes for
// stallBound.
func (s *subscriber) receive(publishers int) error {
	s.from = map[string]*tally{}
	complete := 0
	for complete < publishers {
		ctx, cancel := context.WithTimeout(context.Background(), stallBound)
		m, err := s.c.Recv(ctx)
		cancel()
		if err != nil {
			return err
		}
		name, num, _ := strings.Cut(string(m.Data), " ")
		i, _ := strconv.Atoi(num)
		tl := s.from[name]
		if tl == nil {
			tl = &tally{}
			s.from[name] = tl
		}
		tl.add(i)
		if i == publishes {
			complete++
		}
	}
	return nil
}
