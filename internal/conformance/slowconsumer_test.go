package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/metrics"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Slow consumers, end to end: a server floods a client that does not read,
// through a real transport, with a small MaxQueuedBytes.

const (
	floodMessages = 2000
	floodSize     = 1 << 10
	floodQueue    = 16 << 10
)

// floodMessage is message i of a flood: its number, padded to floodSize.
func floodMessage(i int) wire.Message {
	s := strconv.Itoa(i) + ":"
	return wire.Message{Type: wire.Text, Data: []byte(s + strings.Repeat("x", floodSize-len(s)))}
}

func floodNumber(m wire.Message) (int, error) {
	s, _, ok := strings.Cut(string(m.Data), ":")
	if !ok {
		return 0, fmt.Errorf("not a flood message: %.20q", m.Data)
	}
	return strconv.Atoi(s)
}

// TestSlowConsumerClose: under SlowConsumerClose, the client that does not
// keep up receives, in order and without a gap, the messages queued before
// the limit, then the close with 4002.
func TestSlowConsumerClose(t *testing.T) {
	for _, name := range conformance.OfferedTransports(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sendErr := make(chan error, 1)
			h := tether.HandlerFunc(func(s *session.Session) {
				if _, err := s.Recv(s.Context()); err != nil { // "go"
					return
				}
				for i := range floodMessages {
					if err := s.Send(context.Background(), floodMessage(i)); err != nil {
						sendErr <- err
						return
					}
				}
				sendErr <- nil
			})
			e := &conformance.Env{Transport: name}
			_, base := e.Server(t, h, &tether.Options{MaxQueuedBytes: floodQueue, SlowConsumer: session.SlowConsumerClose})
			c := e.Dial(t, ctx, base, &client.Options{RecvBuffer: 4})
			if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("go")}); err != nil {
				t.Fatal(err)
			}
			err := <-sendErr // the client reads nothing until the server gives up
			if wire.CloseStatus(err) != wire.StatusSlowConsumer {
				t.Fatalf("server Send = %v, want CloseError %d", err, wire.StatusSlowConsumer)
			}
			got := 0
			for {
				m, err := c.Recv(ctx)
				if err != nil {
					if code := wire.CloseStatus(err); code != wire.StatusSlowConsumer {
						t.Fatalf("client Recv after %d messages: %v, want close %d", got, err, wire.StatusSlowConsumer)
					}
					break
				}
				if n, err := floodNumber(m); err != nil || n != got {
					t.Fatalf("message %d is %d (%v): lost or reordered", got, n, err)
				}
				got++
			}
			if got == 0 || got >= floodMessages {
				t.Fatalf("client received %d messages before the close; want some, not all %d", got, floodMessages)
			}
			t.Logf("%s: %d messages, then close %d", name, got, wire.StatusSlowConsumer)
		})
	}
}

// TestSlowConsumerDrop: under SlowConsumerDrop, the messages over the limit
// are dropped and counted (Session.Dropped and tether_queue_drops_total);
// the client receives the rest, in order, and the session goes on.
func TestSlowConsumerDrop(t *testing.T) {
	for _, name := range conformance.OfferedTransports(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			reg := prometheus.NewRegistry()
			m, err := metrics.New(reg)
			if err != nil {
				t.Fatal(err)
			}
			dropped := make(chan uint64, 1)
			total := make(chan uint64, 1)
			h := tether.HandlerFunc(func(s *session.Session) {
				if _, err := s.Recv(s.Context()); err != nil { // "go"
					return
				}
				var drops uint64
				for i := range floodMessages {
					err := s.Send(s.Context(), floodMessage(i))
					switch {
					case errors.Is(err, session.ErrDropped):
						drops++
					case err != nil:
						return
					}
				}
				if s.Dropped() != drops {
					t.Errorf("Session.Dropped() = %d, Send returned ErrDropped %d times", s.Dropped(), drops)
				}
				dropped <- drops
				// The end marker waits for room, so it is never dropped.
				end := wire.Message{Type: wire.Text, Data: []byte("end")}
				for errors.Is(s.Send(s.Context(), end), session.ErrDropped) {
					time.Sleep(5 * time.Millisecond)
				}
				total <- s.Dropped()
				s.Recv(s.Context())
			})
			e := &conformance.Env{Transport: name}
			_, base := e.Server(t, h, &tether.Options{MaxQueuedBytes: floodQueue, SlowConsumer: session.SlowConsumerDrop, Observer: m})
			c := e.Dial(t, ctx, base, &client.Options{RecvBuffer: 4})
			if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("go")}); err != nil {
				t.Fatal(err)
			}
			drops := <-dropped // the client reads nothing until the flood is over
			if drops == 0 {
				t.Fatal("nothing was dropped; the flood should have outrun the client")
			}
			got, last := 0, -1
			for {
				m, err := c.Recv(ctx)
				if err != nil {
					t.Fatalf("client Recv after %d messages: %v", got, err)
				}
				if string(m.Data) == "end" {
					break
				}
				n, err := floodNumber(m)
				if err != nil || n <= last {
					t.Fatalf("message %d after %d (%v): out of order", n, last, err)
				}
				last = n
				got++
			}
			if uint64(got)+drops != floodMessages {
				t.Fatalf("received %d + dropped %d = %d, want %d", got, drops, uint64(got)+drops, floodMessages)
			}
			// The metric counts every drop: the flood's and the end
			// marker's retries.
			want := fmt.Sprintf("# HELP tether_queue_drops_total Messages dropped because the client was too slow (SlowConsumerDrop).\n"+
				"# TYPE tether_queue_drops_total counter\ntether_queue_drops_total %d\n", <-total)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tether_queue_drops_total"); err != nil {
				t.Error(err)
			}
			// The session goes on.
			if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("still here")}); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d received in order, %d dropped and counted", name, got, drops)
		})
	}
}
