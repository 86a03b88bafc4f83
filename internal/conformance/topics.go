package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Topics, end to end: sessions subscribed by the server, messages published
// to them, on the transport under test.

// topicName is the topic the behaviours subscribe to.
const topicName = "room:test"

// topicServer starts a server whose sessions are subscribed to topicName
// with their id as info when they open, and publish every message they
// send to the others; each new session is sent on opened once subscribed.
func topicServer(t *testing.T, e *Env, opts *tether.Options) (srv *tether.Server, base string, opened <-chan *session.Session) {
	t.Helper()
	ch := make(chan *session.Session, 8)
	h := &tether.Callbacks{
		Open: func(s *session.Session) {
			if err := srv.Subscribe(s.Context(), s, topicName, []byte("user "+s.ID())); err != nil {
				t.Errorf("Subscribe in Open: %v", err)
			}
			ch <- s
		},
		Message: func(s *session.Session, m wire.Message) {
			if err := srv.Publish(s.Context(), topicName, m, &broker.PublishOptions{Exclude: s.ID()}); err != nil {
				t.Errorf("Publish: %v", err)
			}
		},
	}
	srv, base = e.Server(t, h, opts)
	return srv, base, ch
}

// nextOpened returns the next session topicServer subscribed.
func nextOpened(t *testing.T, ctx context.Context, opened <-chan *session.Session) *session.Session {
	t.Helper()
	select {
	case s := <-opened:
		return s
	case <-ctx.Done():
		t.Fatal("no session opened")
		return nil
	}
}

// recvWant receives one message and checks it.
func recvWant(t *testing.T, ctx context.Context, c *client.Session, who string, want wire.Message) {
	t.Helper()
	got, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("%s: Recv = %v, want %v %.40q", who, err, want.Type, want.Data)
	}
	if got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("%s: Recv = %v %.40q, want %v %.40q", who, got.Type, got.Data, want.Type, want.Data)
	}
}

// topicPublish: what a subscriber sends reaches every other subscriber but
// not itself (PublishOptions.Exclude); what the server publishes reaches
// all, text and binary, in order; presence lists the subscribers with their
// info and reports a closed one's leave.
func topicPublish(t *testing.T, e *Env) {
	ctx := e.Context(t)
	srv, base, opened := topicServer(t, e, nil)
	left := make(chan broker.PresenceEvent, 8)
	srv.OnPresence(func(ev broker.PresenceEvent) {
		if ev.Change == broker.Left {
			left <- ev
		}
	})
	a := e.Dial(t, ctx, base, nil)
	b := e.Dial(t, ctx, base, nil)
	// A Handler subscribes its session when it starts, after negotiate.
	nextOpened(t, ctx, opened)
	nextOpened(t, ctx, opened)

	members, err := srv.Presence(ctx, topicName)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		got = append(got, m.Session+"="+string(m.Info))
	}
	slices.Sort(got)
	want := []string{a.ID() + "=user " + a.ID(), b.ID() + "=user " + b.ID()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Presence = %q, want %q", got, want)
	}

	if err := a.Send(ctx, text("hello from a")); err != nil {
		t.Fatal(err)
	}
	recvWant(t, ctx, b, "b", text("hello from a"))
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	// Every framing's encoding, built once and shared by both sessions.
	published := []wire.Message{text("to all"), text("line\nbreak\r\x1eand separator"), binary(all), binary(nil), text("")}
	for _, m := range published {
		if err := srv.Publish(ctx, topicName, m, nil); err != nil {
			t.Fatalf("Publish(%v %q) = %v", m.Type, m.Data, err)
		}
	}
	for _, m := range published {
		recvWant(t, ctx, a, "a", m) // a's first message: its own was excluded
		recvWant(t, ctx, b, "b", m)
	}

	a.Close(wire.StatusNormalClosure, "")
	select {
	case ev := <-left:
		if ev.Topic != topicName || ev.Member.Session != a.ID() || string(ev.Member.Info) != "user "+a.ID() {
			t.Fatalf("leave event = %+v, want a's (%s) on %s", ev, a.ID(), topicName)
		}
	case <-ctx.Done():
		t.Fatal("no leave event for the session that closed")
	}
	if members, _ := srv.Presence(ctx, topicName); len(members) != 1 || members[0].Session != b.ID() {
		t.Fatalf("Presence after a closed = %+v, want b (%s) alone", members, b.ID())
	}
}

// topicResume: messages published while the subscriber's client is between
// two connections arrive when it attaches again, in order with the
// session's own, none lost, none twice.
func topicResume(t *testing.T, e *Env) {
	ctx := e.Context(t)
	srv, base, opened := topicServer(t, e, nil)
	proxy, proxied := viaProxy(t, base, nil)
	c := e.Dial(t, ctx, proxied, nil)
	s := nextOpened(t, ctx, opened)
	publish := func(m wire.Message) {
		t.Helper()
		if err := srv.Publish(ctx, topicName, m, nil); err != nil {
			t.Fatalf("Publish(%q) = %v", m.Data, err)
		}
	}
	publish(text("before"))
	recvWant(t, ctx, c, "client", text("before"))

	proxy.Pause()
	proxy.CutAll()
	for s.Transport() != "" { // the cut reaches the server; the next attach is held
		select {
		case <-ctx.Done():
			t.Fatal("the session stayed attached after the cut")
		case <-time.After(5 * time.Millisecond):
		}
	}
	var want []wire.Message
	for i := range 50 {
		m := text(fmt.Sprintf("between %d", i))
		if i == 25 {
			own := text("the session's own")
			if err := s.Send(ctx, own); err != nil {
				t.Fatal(err)
			}
			want = append(want, own)
		}
		publish(m)
		want = append(want, m)
	}
	proxy.Resume()
	for _, m := range want {
		recvWant(t, ctx, c, "client", m)
	}
	publish(text("after"))
	recvWant(t, ctx, c, "client", text("after")) // nothing twice
}

// topicBadInput: each bad request to the topics API gets its documented
// answer and disturbs nothing: the subscriber receives exactly what was
// validly published, once each, in order.
func topicBadInput(t *testing.T, e *Env) {
	ctx := e.Context(t)
	srv, base, opened := topicServer(t, e, &tether.Options{MaxMessageBytes: smallLimit})
	events := make(chan broker.PresenceEvent, 16)
	srv.OnPresence(func(ev broker.PresenceEvent) { events <- ev })
	c := e.Dial(t, ctx, base, nil)
	s := nextOpened(t, ctx, opened)
	nextEvent := func() broker.PresenceEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-ctx.Done():
			t.Fatal("no presence event")
			return broker.PresenceEvent{}
		}
	}
	if ev := nextEvent(); ev.Change != broker.Joined || ev.Member.Session != s.ID() {
		t.Fatalf("first event = %+v, want the join of %s", ev, s.ID())
	}

	// An invalid topic name.
	for _, bad := range []string{"", "room test", "room*", strings.Repeat("x", broker.MaxTopicBytes+1)} {
		if err := srv.Subscribe(ctx, s, bad, nil); !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalidTopic", bad, err)
		}
		if err := srv.Publish(ctx, bad, text("x"), nil); !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidTopic", bad, err)
		}
		if _, err := srv.Presence(ctx, bad); !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Presence(%q) = %v, want ErrInvalidTopic", bad, err)
		}
	}
	// The same session twice: nothing changes, no second join.
	if err := srv.Subscribe(ctx, s, topicName, []byte("other info")); err != nil {
		t.Fatalf("Subscribe again = %v, want nil", err)
	}
	if got := srv.Topics(s); !slices.Equal(got, []string{topicName}) {
		t.Fatalf("Topics = %q, want [%q]", got, topicName)
	}
	if members, _ := srv.Presence(ctx, topicName); len(members) != 1 || string(members[0].Info) != "user "+s.ID() {
		t.Fatalf("Presence = %+v, want one member with its first info", members)
	}
	if err := srv.Publish(ctx, topicName, text("one"), nil); err != nil {
		t.Fatal(err)
	}
	// A message over MaxMessageBytes, and one Send would refuse.
	if err := srv.Publish(ctx, topicName, text(strings.Repeat("x", smallLimit+1)), nil); !errors.Is(err, wire.ErrMessageTooBig) {
		t.Errorf("Publish over the limit = %v, want ErrMessageTooBig", err)
	}
	if err := srv.Publish(ctx, topicName, wire.Message{Type: wire.Text, Data: []byte{0xff}}, nil); !errors.Is(err, wire.ErrInvalidMessage) {
		t.Errorf("Publish of invalid UTF-8 text = %v, want ErrInvalidMessage", err)
	}
	// A topic with no subscribers.
	if err := srv.Publish(ctx, "nobody:here", text("lost"), nil); err != nil {
		t.Errorf("Publish to a topic without subscribers = %v, want nil", err)
	}
	// A closed session: refused with its CloseError, presence unchanged.
	c2 := e.Dial(t, ctx, base, nil)
	s2 := nextOpened(t, ctx, opened)
	nextEvent() // s2's join
	s2.Close(wire.StatusNormalClosure, "done")
	if err := srv.Subscribe(ctx, s2, "room:other", nil); wire.CloseStatus(err) != wire.StatusNormalClosure {
		t.Errorf("Subscribe of a closed session = %v, want its CloseError", err)
	}
	if _, err := c2.Recv(ctx); wire.CloseStatus(err) != wire.StatusNormalClosure {
		t.Fatalf("closed client: Recv = %v, want close %d", err, wire.StatusNormalClosure)
	}
	if ev := nextEvent(); ev.Change != broker.Left || ev.Member.Session != s2.ID() {
		t.Fatalf("event = %+v, want the leave of %s", ev, s2.ID())
	}
	if members, _ := srv.Presence(ctx, "room:other"); len(members) != 0 {
		t.Errorf("Presence of room:other = %+v, want none", members)
	}

	if err := srv.Publish(ctx, topicName, text("last"), nil); err != nil {
		t.Fatal(err)
	}
	recvWant(t, ctx, c, "client", text("one"))
	recvWant(t, ctx, c, "client", text("last"))
	select {
	case ev := <-events:
		t.Errorf("unexpected presence event %+v", ev)
	default:
	}
}
