package tether_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// newTopicServer returns a server whose sessions are created in-process
// (NewSession) and served by no handler of their own.
func newTopicServer(t *testing.T) *tether.Server {
	t.Helper()
	srv := tether.NewServer(&tether.Callbacks{Message: func(*session.Session, wire.Message) {}},
		&tether.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { srv.Close() })
	return srv
}

func newLocal(t *testing.T, srv *tether.Server) *session.Local {
	t.Helper()
	l, err := srv.NewSession(httptest.NewRequest("POST", "/negotiate", nil))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitPresence waits until topic has want members, failing after ten
// seconds; it asserts nothing about how long that took.
func waitPresence(t *testing.T, srv *tether.Server, topic string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		members, err := srv.Presence(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(members) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Presence(%s) = %d members, want %d", topic, len(members), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSubscribeRacesClose: Subscribe and Unsubscribe calls racing the
// session's close leave nothing behind: once every session has closed, no
// topic lists any of them.
func TestSubscribeRacesClose(t *testing.T) {
	srv := newTopicServer(t)
	ctx := context.Background()
	const sessions, topics = 50, 8
	var wg sync.WaitGroup
	for range sessions {
		l := newLocal(t, srv)
		for k := range topics {
			topic := fmt.Sprint("t", k)
			wg.Go(func() {
				srv.Subscribe(ctx, l.Session, topic, nil)
				if k%2 == 0 {
					srv.Unsubscribe(ctx, l.Session, topic)
				}
				srv.Subscribe(ctx, l.Session, topic, nil)
			})
		}
		wg.Go(func() { l.Close(wire.StatusNormalClosure, "") })
	}
	wg.Wait()
	for k := range topics {
		waitPresence(t, srv, fmt.Sprint("t", k), 0)
	}
}

// TestSubscribeOtherServer: a session another server holds cannot be
// subscribed here.
func TestSubscribeOtherServer(t *testing.T) {
	here, there := newTopicServer(t), newTopicServer(t)
	l := newLocal(t, there)
	if err := here.Subscribe(context.Background(), l.Session, "t", nil); !errors.Is(err, session.ErrUnknownSession) {
		t.Fatalf("Subscribe of another server's session = %v, want ErrUnknownSession", err)
	}
	if err := here.Unsubscribe(context.Background(), l.Session, "t"); err != nil {
		t.Fatalf("Unsubscribe of another server's session = %v, want nil", err)
	}
}

// TestUnsubscribeLeaves: an unsubscribed session receives nothing more, and
// Topics follows.
func TestUnsubscribeLeaves(t *testing.T) {
	srv := newTopicServer(t)
	ctx := context.Background()
	l := newLocal(t, srv)
	for _, topic := range []string{"b", "a"} {
		if err := srv.Subscribe(ctx, l.Session, topic, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(srv.Topics(l.Session)); got != "[a b]" {
		t.Fatalf("Topics = %s, want [a b]", got)
	}
	srv.Publish(ctx, "a", wire.Message{Type: wire.Text, Data: []byte("1")}, nil)
	if err := srv.Unsubscribe(ctx, l.Session, "a"); err != nil {
		t.Fatal(err)
	}
	srv.Publish(ctx, "a", wire.Message{Type: wire.Text, Data: []byte("2")}, nil)
	if sent, _ := l.Sent(); sent != 1 {
		t.Fatalf("sent %d messages, want 1 (the one before Unsubscribe)", sent)
	}
	if got := fmt.Sprint(srv.Topics(l.Session)); got != "[b]" {
		t.Fatalf("Topics = %s, want [b]", got)
	}
	if err := srv.Unsubscribe(ctx, l.Session, "a"); err != nil {
		t.Fatalf("Unsubscribe again = %v, want nil", err)
	}
	if err := srv.Unsubscribe(ctx, l.Session, "bad topic"); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Fatalf("Unsubscribe(bad topic) = %v, want ErrInvalidTopic", err)
	}
}

// gapBroker is a Memory that keeps the subscribers it is given, so that a
// test can tell them of a gap as a numbering Broker would.
type gapBroker struct {
	*broker.Memory
	mu   sync.Mutex
	subs []broker.Subscriber // guarded by mu
}

func (b *gapBroker) Subscribe(ctx context.Context, topic string, sub broker.Subscriber, info []byte) (bool, error) {
	b.mu.Lock()
	b.subs = append(b.subs, sub)
	b.mu.Unlock()
	return b.Memory.Subscribe(ctx, topic, sub, info)
}

// TestTopicGapCloses: a session whose Broker finds it missed messages of a
// topic is closed with 4000 topic gap.
func TestTopicGapCloses(t *testing.T) {
	b := &gapBroker{Memory: broker.NewMemory()}
	srv := tether.NewServer(&tether.Callbacks{Message: func(*session.Session, wire.Message) {}},
		&tether.Options{Logger: slog.New(slog.DiscardHandler), Broker: b})
	t.Cleanup(func() { srv.Close() })
	l := newLocal(t, srv)
	ctx := context.Background()
	if err := srv.Subscribe(ctx, l.Session, "room", nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Publish(ctx, "room", wire.Message{Type: wire.Text, Data: []byte("before")}, nil); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	gc, ok := b.subs[0].(broker.GapCloser)
	b.mu.Unlock()
	if !ok {
		t.Fatalf("the server's subscriber %T is no broker.GapCloser", b.subs[0])
	}
	gc.CloseGap("room")
	want := wire.CloseError{Code: wire.StatusResumeGap, Reason: broker.GapReason}
	if err := l.Err(); err != want {
		t.Fatalf("Err after CloseGap = %v, want %v", err, want)
	}
	if got := fmt.Sprint(l.Err()); got != "tether: session closed: 4000 topic gap" {
		t.Errorf("the close reads %q", got)
	}
}
