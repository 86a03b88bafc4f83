package conformance_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestTopicHundredThousandSubscribers: one topic with 100,000 in-process
// subscribers and, on every transport, a client that reads and one that
// never reads. The publisher is never held up; the one that never reads is
// closed with 4002 (SlowConsumerClose) once its queue is full; everyone
// else receives every message, in order; and the topic's messages are held
// once, not once per subscriber. Under the race detector, which makes each
// subscriber several times as costly (minutes on a loaded 2-core machine),
// the topic has 10,000 in-process subscribers; the memory bound is per
// subscriber either way.
func TestTopicHundredThousandSubscribers(t *testing.T) {
	inProcess := 100_000
	if raceDetector {
		inProcess = 10_000
	}
	const (
		size       = 4 << 10
		measured   = 8  // published before the in-process subscribers acknowledge anything
		total      = 24 // 96 KiB: more than the 64 KiB MaxQueuedBytes
		queueBytes = 64 << 10
		topic      = "prices"
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var srv *tether.Server
	var sessions sync.Map // id -> *session.Session
	h := &tether.Callbacks{
		Open: func(s *session.Session) {
			sessions.Store(s.ID(), s)
			if err := srv.Subscribe(ctx, s, topic, nil); err != nil {
				t.Errorf("Subscribe: %v", err)
			}
		},
		Message: func(*session.Session, wire.Message) {},
	}
	offered := conformance.OfferedTransports(t)
	e := &conformance.Env{Transport: offered[0], Callbacks: true}
	srv, base := e.Server(t, h, &tether.Options{
		MaxSessions:       inProcess + 2*len(offered),
		FirstAttachWindow: 10 * time.Minute,
		ResumeWindow:      10 * time.Minute,
		MaxQueuedBytes:    queueBytes,
	})

	// The clients, two per transport: one reads everything, one never
	// reads (it takes one message and stops reading the connection).
	type pair struct {
		transport     string
		reader, stuck *client.Session
	}
	var pairs []pair
	for _, name := range offered {
		env := &conformance.Env{Transport: name}
		pairs = append(pairs, pair{name, env.Dial(t, ctx, base, nil), env.Dial(t, ctx, base, &client.Options{RecvBuffer: 1, CloseTimeout: stuckCloseTimeout})})
	}

	// The in-process subscribers: sessions with no connection, whose
	// "client" acknowledges what they hold when the test says so.
	locals := make([]*session.Local, inProcess)
	negotiate := httptest.NewRequest("POST", "/rt/negotiate", nil)
	for i := range locals {
		l, err := srv.NewSession(negotiate)
		if err != nil {
			t.Fatalf("NewSession #%d: %v", i, err)
		}
		locals[i] = l
	}
	acknowledgeAll := func() {
		for _, l := range locals {
			sent, _ := l.Sent()
			if err := l.Acknowledge(sent); err != nil {
				t.Fatalf("Acknowledge: %v", err)
			}
		}
	}
	if members, err := srv.Presence(ctx, topic); err != nil || len(members) != inProcess+2*len(offered) {
		t.Fatalf("Presence = %d members, %v; want %d", len(members), err, inProcess+2*len(offered))
	}

	message := func(i int) wire.Message {
		p := fmt.Sprintf("%d:", i)
		return wire.Message{Type: wire.Text, Data: []byte(p + strings.Repeat("p", size-len(p)))}
	}
	// The readers read as the messages come, each counting what it has.
	received := make([]atomic.Int64, len(pairs))
	readErr := make(chan error, len(pairs))
	for k, p := range pairs {
		go func() {
			for i := range total {
				m, err := p.reader.Recv(ctx)
				if err != nil {
					readErr <- fmt.Errorf("%s reader: Recv #%d: %w", p.transport, i, err)
					return
				}
				if want := message(i); string(m.Data) != string(want.Data) {
					readErr <- fmt.Errorf("%s reader: message #%d = %.12q..., want %.12q...", p.transport, i, m.Data, want.Data)
					return
				}
				received[k].Add(1)
			}
			readErr <- nil
		}()
	}
	// awaitReaders waits until every reader has n messages: the publisher
	// is paced by the clients that keep up (a burst of more than
	// MaxQueuedBytes would close them too), not by the one that never
	// reads.
	awaitReaders := func(n int) {
		for k := range received {
			for received[k].Load() < int64(n) {
				select {
				case err := <-readErr:
					t.Fatal(err)
				case <-ctx.Done():
					t.Fatalf("%s reader: %d messages of %d", pairs[k].transport, received[k].Load(), n)
				case <-time.After(time.Millisecond):
				}
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := range total {
		if err := srv.Publish(ctx, topic, message(i), nil); err != nil {
			t.Fatalf("Publish #%d: %v", i, err)
		}
		if i == measured-1 {
			// Each queue holds every message so far: copies would take
			// subscribers*measured*size (3.2 GB for 100,000).
			grown := int64(heap()) - int64(before)
			if limit := int64(inProcess * measured * size / 8); grown > limit {
				t.Fatalf("the heap grew %d bytes holding %d messages of %d bytes for %d subscribers; want under %d (one copy per message)",
					grown, measured, size, inProcess, limit)
			}
			t.Logf("%d messages of %d bytes queued for %d subscribers: the heap grew %.1f MB", measured, size, inProcess, float64(grown)/1e6)
		}
		if i >= measured-1 {
			acknowledgeAll()
		}
		awaitReaders(i + 1)
		for _, p := range pairs {
			v, _ := sessions.Load(p.reader.ID())
			awaitKeptUp(t, ctx, v.(*session.Session), size, queueBytes)
		}
	}
	for range pairs {
		if err := <-readErr; err != nil {
			t.Fatal(err)
		}
	}

	for _, l := range locals {
		if sent, acked := l.Sent(); sent != total || acked != total || l.Err() != nil {
			t.Fatalf("in-process subscriber: sent %d, acknowledged %d, err %v; want %d, %d, open", sent, acked, l.Err(), total, total)
		}
	}
	for _, p := range pairs {
		v, _ := sessions.Load(p.stuck.ID())
		if code := wire.CloseStatus(v.(*session.Session).Err()); code != wire.StatusSlowConsumer {
			t.Errorf("%s: the subscriber that never reads ended with %d, want %d", p.transport, code, wire.StatusSlowConsumer)
		}
	}
}

// TestTopicSlowConsumerPolicies: on every transport, a publish to a topic
// with a client that reads and one that never reads, under each
// slow-consumer policy. Publish never waits for the one that never reads:
// under SlowConsumerClose and SlowConsumerBlock it is closed with 4002,
// under SlowConsumerDrop it loses messages and stays open; the reader gets
// every message, in order.
func TestTopicSlowConsumerPolicies(t *testing.T) {
	const (
		topic      = "ticks"
		size       = 1 << 10
		total      = 24 // 24 KiB: more than MaxQueuedBytes
		queueBytes = 16 << 10
	)
	for _, policy := range []session.SlowConsumerPolicy{session.SlowConsumerClose, session.SlowConsumerDrop, session.SlowConsumerBlock} {
		for _, name := range conformance.OfferedTransports(t) {
			t.Run(policy.String()+"/"+name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var srv *tether.Server
				var sessions sync.Map // id -> *session.Session
				h := &tether.Callbacks{
					Open: func(s *session.Session) {
						sessions.Store(s.ID(), s)
						if err := srv.Subscribe(ctx, s, topic, nil); err != nil {
							t.Errorf("Subscribe: %v", err)
						}
					},
					Message: func(*session.Session, wire.Message) {},
				}
				e := &conformance.Env{Transport: name, Callbacks: true}
				srv, base := e.Server(t, h, &tether.Options{MaxQueuedBytes: queueBytes, SlowConsumer: policy})
				reader := e.Dial(t, ctx, base, nil)
				stuck := e.Dial(t, ctx, base, &client.Options{RecvBuffer: 1, CloseTimeout: stuckCloseTimeout})
				message := func(i int) wire.Message {
					p := fmt.Sprintf("%d:", i)
					return wire.Message{Type: wire.Text, Data: []byte(p + strings.Repeat("t", size-len(p)))}
				}
				for i := range total {
					if err := srv.Publish(ctx, topic, message(i), nil); err != nil {
						t.Fatalf("Publish #%d: %v", i, err)
					}
					m, err := reader.Recv(ctx)
					if err != nil {
						t.Fatalf("reader: Recv #%d: %v", i, err)
					}
					if want := message(i); string(m.Data) != string(want.Data) {
						t.Fatalf("reader: message #%d = %.8q..., want %.8q...", i, m.Data, want.Data)
					}
					// Paced by the reader, which keeps up: a burst of more
					// than MaxQueuedBytes would meet the policy too.
					v, _ := sessions.Load(reader.ID())
					awaitKeptUp(t, ctx, v.(*session.Session), size, queueBytes)
				}
				v, _ := sessions.Load(stuck.ID())
				s := v.(*session.Session)
				code := wire.CloseStatus(s.Err())
				switch policy {
				case session.SlowConsumerDrop:
					if code != -1 || s.Dropped() == 0 {
						t.Errorf("the subscriber that never reads: closed %d, dropped %d; want open, some dropped", code, s.Dropped())
					}
				default:
					if code != wire.StatusSlowConsumer {
						t.Errorf("the subscriber that never reads ended with %d, want %d", code, wire.StatusSlowConsumer)
					}
				}
			})
		}
	}
}

// awaitKeptUp waits until the client of s has acknowledged all but at most
// half of queueBytes of the messages sent to it, each of size bytes: what a
// client that keeps up holds unacknowledged (a WebSocket client
// acknowledges every 32 messages or after a pause, a stream client when it
// opens its next response, at half the queue at most). A publisher paced by
// it never sets off the policy of a client that reads.
func awaitKeptUp(t *testing.T, ctx context.Context, s *session.Session, size, queueBytes int) {
	t.Helper()
	for {
		sent, acked := s.Sent()
		if int(sent-acked)*(size+session.MessageOverhead) <= queueBytes/2 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the client that reads acknowledged %d of %d messages", acked, sent)
		case <-time.After(time.Millisecond):
		}
	}
}

// stuckCloseTimeout bounds the Close, at the end of a test, of a client
// that never reads: its session is over, and its close frame may never
// reach the server through a connection it stopped reading.
const stuckCloseTimeout = 100 * time.Millisecond
