package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// memJournal is a Journal in memory: it keeps the state its Writes make, as
// a shared store would, and every Entry it was given. A test can make the
// next Writes fail, or hold each Write until it says so.
type memJournal struct {
	t *testing.T

	mu       sync.Mutex
	entries  []session.Entry // deep copies, in the order written
	acked    uint64
	out      []wire.Message // stored messages Acked+1...
	received uint64
	topics   map[string]bool
	fail     []error            // returned by the next Writes, one each, before storing
	down     error              // while set, returned by every Write, which then signals failed
	failed   chan struct{}      // capacity 1
	gate     chan chan struct{} // when set, each Write sends it a channel and waits for it to close
}

func newMemJournal(t *testing.T) *memJournal {
	return &memJournal{t: t, topics: map[string]bool{}, failed: make(chan struct{}, 1)}
}

// Write implements session.Journal.
func (j *memJournal) Write(ctx context.Context, e *session.Entry) error {
	j.mu.Lock()
	gate := j.gate
	j.mu.Unlock()
	if gate != nil {
		release := make(chan struct{})
		select {
		case gate <- release:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.fail) > 0 {
		err := j.fail[0]
		j.fail = j.fail[1:]
		return err
	}
	if j.down != nil {
		select {
		case j.failed <- struct{}{}:
		default:
		}
		return j.down
	}
	c := *e
	c.Messages = slices.Clone(e.Messages)
	c.Subscribe, c.Unsubscribe = slices.Clone(e.Subscribe), slices.Clone(e.Unsubscribe)
	c.TopicOffsets = slices.Clone(e.TopicOffsets)
	c.SubscribeInfo = slices.Clone(e.SubscribeInfo)
	j.entries = append(j.entries, c)
	sent := j.acked + uint64(len(j.out))
	if len(e.Messages) > 0 && e.First > sent+1 {
		j.t.Errorf("Entry.First %d after %d stored", e.First, sent)
		return errors.New("out of order")
	}
	for i, m := range e.Messages {
		if e.First+uint64(i) > sent {
			j.out = append(j.out, m)
		}
	}
	sent = j.acked + uint64(len(j.out))
	if e.Acked > sent {
		j.t.Errorf("Entry.Acked %d of %d stored", e.Acked, sent)
	} else if e.Acked > j.acked {
		j.out = j.out[e.Acked-j.acked:]
		j.acked = e.Acked
	}
	j.received = max(j.received, e.Received)
	for _, topic := range e.Subscribe {
		j.topics[topic] = true
	}
	for _, topic := range e.Unsubscribe {
		delete(j.topics, topic)
	}
	return nil
}

// takeOver returns what a process that takes the session over continues
// from, with a journal of its own that starts from j's state (as a shared
// store's would).
func (j *memJournal) takeOver(id, token string) session.Restored {
	j.mu.Lock()
	defer j.mu.Unlock()
	next := newMemJournal(j.t)
	next.acked, next.out, next.received = j.acked, slices.Clone(j.out), j.received
	return session.Restored{ID: id, Token: token, Acked: j.acked, Out: slices.Clone(j.out), Received: j.received, Journal: next}
}

// written returns a copy of the entries written so far.
func (j *memJournal) written() []session.Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// hold makes every Write wait until the test releases it: gate returns the
// channel each Write hands its release channel to.
func (j *memJournal) hold() chan chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gate = make(chan chan struct{})
	return j.gate
}

// failNext makes the next Writes return errs, one each.
func (j *memJournal) failNext(errs ...error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fail = append(j.fail, errs...)
}

// newJournaled returns a session writing to j that is ended when the test
// ends, so that no goroutine outlives it.
func newJournaled(t *testing.T, j session.Journal, onFinish func(*session.Local)) *session.Local {
	t.Helper()
	s, err := session.NewJournaled(testConfig(), session.RequestInfo{}, func(id, token string) (session.Journal, error) {
		return j, nil
	}, onFinish)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure}) })
	return s
}

// next waits for the next Write to start and returns its release.
func next(t *testing.T, gate chan chan struct{}) chan struct{} {
	t.Helper()
	select {
	case release := <-gate:
		return release
	case <-testContext(t).Done():
		t.Fatal("no Write started")
		return nil
	}
}

// TestJournalStoresBeforeHanding checks that a message goes to a link only
// once a Write that holds it has returned nil.
func TestJournalStoresBeforeHanding(t *testing.T) {
	j := newMemJournal(t)
	gate := j.hold()
	s := newJournaled(t, j, nil)
	l := attach(t, s, session.AttachOptions{Transport: "test"})
	sendAll(t, s, "a")
	release := next(t, gate)
	if b, err := l.Collect(1 << 20); err != nil || !b.Empty() {
		t.Fatalf("Collect during the Write = %q, %v; want nothing", strs(b.Messages), err)
	}
	if err := s.Acknowledge(1); !errors.Is(err, session.ErrBadAck) {
		t.Errorf("Acknowledge(1) of a message not stored = %v, want ErrBadAck", err)
	}
	close(release)
	if b := pull(t, l, 1<<20); b.First != 1 || join(strs(b.Messages)) != "a" {
		t.Fatalf("Pull after the Write = %d %q, want 1 [a]", b.First, strs(b.Messages))
	}
	if e := j.written(); len(e) != 1 || e[0].First != 1 || join(strs(e[0].Messages)) != "a" {
		t.Fatalf("entries = %+v, want one with message 1 a", e)
	}
	if s.TakenOver() {
		t.Error("TakenOver() = true for a new session")
	}
}

// TestJournalBatches checks that what is sent while a Write is under way
// goes in the next Write, all of it, with the acknowledgement made
// meanwhile.
func TestJournalBatches(t *testing.T) {
	j := newMemJournal(t)
	gate := j.hold()
	s := newJournaled(t, j, nil)
	l := attach(t, s, session.AttachOptions{Transport: "test"})
	sendAll(t, s, "m1")
	release := next(t, gate)
	close(release)
	pull(t, l, 1<<20)
	sendAll(t, s, "m2")
	release = next(t, gate)
	want := []string{"m2"}
	for i := 3; i <= 100; i++ {
		sendAll(t, s, fmt.Sprint("m", i))
		want = append(want, fmt.Sprint("m", i))
	}
	if err := s.Acknowledge(1); err != nil {
		t.Fatal(err)
	}
	close(release) // m2 alone
	close(next(t, gate))
	var got []string
	for len(got) < len(want) {
		got = append(got, strs(pull(t, l, 1<<20).Messages)...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("pulled %q, want %q", got, want)
	}
	e := j.written()
	if len(e) != 3 {
		t.Fatalf("%d entries, want 3", len(e))
	}
	if last := e[2]; last.First != 3 || len(last.Messages) != 98 || last.Acked != 1 {
		t.Errorf("third entry = first %d, %d messages, acked %d; want 3, 98, 1", last.First, len(last.Messages), last.Acked)
	}
}

// TestJournalDeliverWaits checks that Deliver returns only once the
// received count is stored, and that a bidirectional link acknowledges
// only what is stored.
func TestJournalDeliverWaits(t *testing.T) {
	j := newMemJournal(t)
	gate := j.hold()
	s := newJournaled(t, j, nil)
	l := attach(t, s, session.AttachOptions{Transport: "test", AcksInBand: true})
	done := make(chan error, 1)
	go func() { done <- s.Deliver(testContext(t), 1, texts("x")) }()
	release := next(t, gate)
	select {
	case err := <-done:
		t.Fatalf("Deliver returned %v before its Write did", err)
	default:
	}
	// A Pull that waits in vain would carry an acknowledgement instead of
	// a heartbeat, if there were one to make.
	if b, err := l.Pull(testContext(t), time.Millisecond, 1<<20); err != nil || b.AckDue {
		t.Fatalf("Pull during the Write = ack %v %d, %v; want no acknowledgement", b.AckDue, b.Received, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	if e := j.written(); len(e) != 1 || e[0].Received != 1 {
		t.Fatalf("entries = %+v, want one with Received 1", e)
	}
	if b, err := l.Pull(testContext(t), longWait, 1<<20); err != nil || !b.AckDue || b.Received != 1 {
		t.Fatalf("Pull after the Write = ack %v %d, %v; want an acknowledgement of 1", b.AckDue, b.Received, err)
	}
	// A duplicate is answered at once: its count is stored.
	if err := s.Deliver(testContext(t), 1, texts("x")); err != nil {
		t.Fatalf("Deliver of a duplicate = %v", err)
	}
	if m := recvAll(t, s, 1); join(m) != "x" {
		t.Errorf("Recv = %q, want x", m)
	}
}

// echoSession returns a journaled session (New, or Restore of r when r is
// not nil) whose message callback echoes each message.
func echoSession(t *testing.T, j session.Journal, r *session.Restored) *session.Local {
	t.Helper()
	var s *session.Local
	if r == nil {
		s = newJournaled(t, j, nil)
	} else {
		var err error
		if s, err = session.Restore(testConfig(), session.RequestInfo{}, *r, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure}) })
	}
	s.OnMessage(func(m wire.Message) {
		if err := s.Send(context.Background(), wire.Message{Type: m.Type, Data: append([]byte("echo "), m.Data...)}); err != nil {
			t.Errorf("Send in OnMessage: %v", err)
		}
	})
	return s
}

// TestJournalEchoOneWrite checks that the received count and what the
// message callback sent go in one Write, before Deliver returns.
func TestJournalEchoOneWrite(t *testing.T) {
	j := newMemJournal(t)
	s := echoSession(t, j, nil)
	if err := s.Deliver(testContext(t), 1, texts("a", "b")); err != nil {
		t.Fatal(err)
	}
	e := j.written()
	if len(e) != 1 || e[0].Received != 2 || join(strs(e[0].Messages)) != "echo a,echo b" {
		t.Fatalf("entries = %+v, want one with Received 2 and both echoes", e)
	}
}

// TestJournalEchoAtomic checks the exactly-once echo across a takeover: a
// Deliver whose Write fails stores neither the message nor its echo, and
// the client's resend to the process that takes the session over is echoed
// once.
func TestJournalEchoAtomic(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail error
	}{
		{"lease lost", fmt.Errorf("fenced: %w", session.ErrLeaseLost)},
		{"unreachable", errors.New("store down")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newMemJournal(t)
			old := echoSession(t, j, nil)
			if err := old.Deliver(testContext(t), 1, texts("a")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(testContext(t))
			if errors.Is(tc.fail, session.ErrLeaseLost) {
				j.failNext(tc.fail)
			} else {
				// The Writes keep failing: the send request gives up.
				j.mu.Lock()
				j.down = tc.fail
				j.mu.Unlock()
				go func() {
					<-j.failed
					cancel()
				}()
			}
			err := old.Deliver(ctx, 2, texts("b"))
			cancel()
			if !errors.Is(err, session.ErrUnreachable) {
				t.Fatalf("Deliver whose Write failed = %v, want ErrUnreachable", err)
			}
			// The old process is gone; another one takes the session
			// over from what was stored.
			old.LeaseLost(errors.New("process killed"))
			r := j.takeOver(old.ID(), old.Token())
			if r.Received != 1 || join(strs(r.Out)) != "echo a" {
				t.Fatalf("stored: received %d, out %q; want 1, [echo a]", r.Received, strs(r.Out))
			}
			s := echoSession(t, nil, &r)
			if !s.TakenOver() {
				t.Error("TakenOver() = false after Restore")
			}
			for range 2 { // the client resends, maybe twice
				if err := s.Deliver(testContext(t), 1, texts("a", "b")); err != nil {
					t.Fatal(err)
				}
			}
			l := attach(t, s, session.AttachOptions{Transport: "test", Received: 0})
			if b := pull(t, l, 1<<20); join(strs(b.Messages)) != "echo a,echo b" {
				t.Fatalf("client got %q, want [echo a echo b]", strs(b.Messages))
			}
		})
	}
}

// TestJournalRetries checks that a Write that fails with a passing error
// is made again, with what came meanwhile, and the messages go out then.
func TestJournalRetries(t *testing.T) {
	j := newMemJournal(t)
	j.failNext(errors.New("down"), errors.New("still down"))
	s := newJournaled(t, j, nil)
	l := attach(t, s, session.AttachOptions{Transport: "test"})
	sendAll(t, s, "a", "b")
	var got []string
	for len(got) < 2 {
		got = append(got, strs(pull(t, l, 1<<20).Messages)...)
	}
	if join(got) != "a,b" {
		t.Fatalf("pulled %q, want [a b]", got)
	}
	if r := j.takeOver("", ""); join(strs(r.Out)) != "a,b" {
		t.Fatalf("stored %q, want [a b]", strs(r.Out))
	}
}

// TestJournalLeaseLost checks that a session whose Write says the lease is
// lost ends at once without a close frame: its link ends with
// ErrUnreachable, it leaves the store, and its application learns why.
func TestJournalLeaseLost(t *testing.T) {
	for _, how := range []string{"Write", "LeaseLost"} {
		t.Run(how, func(t *testing.T) {
			j := newMemJournal(t)
			finished := make(chan struct{})
			s := newJournaled(t, j, func(*session.Local) { close(finished) })
			closed := make(chan error, 1)
			s.OnClose(func(err error) { closed <- err })
			l := attach(t, s, session.AttachOptions{Transport: "test"})
			sendAll(t, s, "a")
			pull(t, l, 1<<20)
			if how == "Write" {
				j.failNext(fmt.Errorf("fenced: %w", session.ErrLeaseLost))
				sendAll(t, s, "b")
			} else {
				s.LeaseLost(fmt.Errorf("renew: %w", session.ErrLeaseLost))
			}
			b, err := l.Pull(testContext(t), longWait, 1<<20)
			if !errors.Is(err, session.ErrUnreachable) || !errors.Is(err, session.ErrLeaseLost) || b.Close != nil || len(b.Messages) != 0 {
				t.Fatalf("Pull = %q close %v, %v; want no batch, ErrUnreachable and ErrLeaseLost", strs(b.Messages), b.Close, err)
			}
			<-finished
			err = <-closed
			if !errors.Is(err, session.ErrLeaseLost) || wire.CloseStatus(err) != wire.StatusServiceRestart {
				t.Errorf("OnClose got %v, want ErrLeaseLost and code 1012", err)
			}
			if _, err := s.Attach(session.AttachOptions{Transport: "test", Received: 1}); !errors.Is(err, session.ErrUnreachable) {
				t.Errorf("Attach = %v, want ErrUnreachable", err)
			}
			if err := s.Deliver(testContext(t), 1, texts("x")); !errors.Is(err, session.ErrUnreachable) {
				t.Errorf("Deliver = %v, want ErrUnreachable", err)
			}
			if err := s.Send(testContext(t), text("c")); !errors.Is(err, session.ErrLeaseLost) {
				t.Errorf("Send = %v, want ErrLeaseLost", err)
			}
		})
	}
}

// TestJournalTopic checks that topic changes are written, and that
// JournalTopic returns once they are stored.
func TestJournalTopic(t *testing.T) {
	j := newMemJournal(t)
	s := newJournaled(t, j, nil)
	ctx := testContext(t)
	for _, c := range []struct {
		topic string
		sub   bool
	}{{"a", true}, {"b", true}, {"a", false}} {
		if err := s.JournalTopic(ctx, c.topic, c.sub); err != nil {
			t.Fatalf("JournalTopic(%q, %v) = %v", c.topic, c.sub, err)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.topics) != 1 || !j.topics["b"] {
		t.Errorf("stored topics %v, want [b]", j.topics)
	}
}

// TestJournalSubscribeInfo: a topic joined with presence info is written
// with it (Entry.SubscribeInfo, none for a topic joined without); joined
// again with other info while the first Write is in flight, it is written
// again with the new info, and JournalSubscribe returns once that is.
func TestJournalSubscribeInfo(t *testing.T) {
	j := newMemJournal(t)
	gate := j.hold()
	s := newJournaled(t, j, nil)
	ctx := testContext(t)
	first := make(chan error, 1)
	go func() { first <- s.JournalSubscribe(ctx, "a", []byte("first")) }()
	release := next(t, gate)
	// The second change is recorded at once, while the first Write is in
	// flight; given a context that has ended, JournalSubscribe does not
	// wait for it to be stored.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.JournalSubscribe(ended, "a", []byte("second")); !errors.Is(err, context.Canceled) {
		t.Fatalf("JournalSubscribe(second) with an ended context = %v", err)
	}
	close(release)
	// The first returns, its change replaced; the second is written.
	if err := <-first; err != nil {
		t.Fatalf("JournalSubscribe(first) = %v", err)
	}
	close(next(t, gate))
	for len(j.written()) < 2 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	go func() { close(next(t, gate)) }()
	if err := s.JournalTopic(ctx, "b", true); err != nil {
		t.Fatalf("JournalTopic(b) = %v", err)
	}
	entries := j.written()
	if len(entries) != 3 {
		t.Fatalf("%d entries written, want 3", len(entries))
	}
	for i, want := range []struct {
		topic string
		info  [][]byte
	}{{"a", [][]byte{[]byte("first")}}, {"a", [][]byte{[]byte("second")}}, {"b", nil}} {
		e := entries[i]
		if !slices.Equal(e.Subscribe, []string{want.topic}) || !slices.EqualFunc(e.SubscribeInfo, want.info, bytes.Equal) {
			t.Errorf("entry %d: Subscribe %q, SubscribeInfo %q; want [%s], %q", i+1, e.Subscribe, e.SubscribeInfo, want.topic, want.info)
		}
	}
}

// TestJournalConcurrent sends, delivers and acknowledges from several
// goroutines at once through a journal (for the race detector), and checks
// that the client gets every message once, in order, and that the journal
// holds the final counts.
func TestJournalConcurrent(t *testing.T) {
	j := newMemJournal(t)
	s := newJournaled(t, j, nil)
	l := attach(t, s, session.AttachOptions{Transport: "test", AcksInBand: true})
	const senders, each = 4, 200
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if err := s.Send(testContext(t), text(fmt.Sprint(g, ".", i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range each {
			if err := s.Deliver(testContext(t), uint64(i+1), texts("in")); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() { recvAll(t, s, each) })
	last := map[int]int{}
	var n uint64
	for n < senders*each {
		b := pull(t, l, 1<<10)
		for i, m := range b.Messages {
			if b.First+uint64(i) != n+1 {
				t.Fatalf("message %d numbered %d", n+1, b.First+uint64(i))
			}
			n++
			var g, k int
			fmt.Sscanf(string(m.Data), "%d.%d", &g, &k)
			if prev, ok := last[g]; ok && k != prev+1 || !ok && k != 0 {
				t.Fatalf("sender %d: %d after %d", g, k, prev)
			}
			last[g] = k
		}
		if err := s.Acknowledge(n); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	r := j.takeOver("", "")
	if r.Received != each || r.Acked+uint64(len(r.Out)) != senders*each {
		t.Errorf("stored received %d, sent %d; want %d, %d", r.Received, r.Acked+uint64(len(r.Out)), each, senders*each)
	}
}

// TestJournalInBandWindow checks that a Deliver from a transport that
// acknowledges in band does not wait for each Write: up to 64 client
// messages wait to be stored, the next one waits for a Write, and the
// link acknowledges only what is stored.
func TestJournalInBandWindow(t *testing.T) {
	j := newMemJournal(t)
	gate := j.hold()
	s := newJournaled(t, j, nil)
	l := attach(t, s, session.AttachOptions{Transport: "test", AcksInBand: true})
	ctx := session.AcknowledgedInBand(testContext(t))
	if err := s.Deliver(ctx, 1, texts("m")); err != nil {
		t.Fatal(err)
	}
	release := next(t, gate) // holds message 1
	for seq := uint64(2); seq <= 64; seq++ {
		if err := s.Deliver(ctx, seq, texts("m")); err != nil {
			t.Fatalf("Deliver(%d) = %v", seq, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Deliver(ctx, 65, texts("m")) }()
	if b, err := l.Pull(testContext(t), time.Millisecond, 1<<20); err != nil || b.AckDue {
		t.Fatalf("Pull before any Write returned = ack %v %d, %v; want none", b.AckDue, b.Received, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Deliver(65) returned %v before a Write did", err)
	default:
	}
	j.mu.Lock()
	j.gate = nil // the Writes from now on go through
	j.mu.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Deliver(65) = %v", err)
	}
	for acked := uint64(0); acked < 65; {
		b := pull(t, l, 1<<20)
		if !b.AckDue {
			continue
		}
		j.mu.Lock()
		stored := j.received
		j.mu.Unlock()
		if b.Received > stored || b.Received <= acked {
			t.Fatalf("acknowledgement of %d after %d, with %d stored", b.Received, acked, stored)
		}
		acked = b.Received
	}
	if got := len(recvAll(t, s, 65)); got != 65 {
		t.Errorf("Recv got %d messages, want 65", got)
	}
}

// TestJournalTopicOffsets: the topic offset of a message queued with one
// (SendSharedAt) is written in the same Entry as the message, never
// before; one set without a message (SetTopicOffset) with the next Write;
// each topic's highest once.
func TestJournalTopicOffsets(t *testing.T) {
	j := newMemJournal(t)
	gate := j.hold()
	s := newJournaled(t, j, nil)
	s.SetTopicOffset("a", 5)
	first := next(t, gate)
	for i, at := range []session.TopicOffset{{Topic: "a", Offset: 6}, {Topic: "b", Offset: 3}, {Topic: "a", Offset: 8}} {
		if err := s.SendSharedAt(text(fmt.Sprint("m", i+1)), nil, at); err != nil {
			t.Fatal(err)
		}
	}
	close(first)
	close(next(t, gate))
	ctx := testContext(t)
	for len(j.written()) < 2 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	entries := j.written()
	if len(entries) != 2 {
		t.Fatalf("%d entries written, want 2", len(entries))
	}
	want := []session.TopicOffset{{Topic: "a", Offset: 5}}
	if e := entries[0]; len(e.Messages) != 0 || !slices.Equal(e.TopicOffsets, want) {
		t.Errorf("entry 1: %d messages, offsets %v; want none, %v", len(e.Messages), e.TopicOffsets, want)
	}
	want = []session.TopicOffset{{Topic: "a", Offset: 8}, {Topic: "b", Offset: 3}}
	if e := entries[1]; e.First != 1 || len(e.Messages) != 3 || !slices.Equal(e.TopicOffsets, want) {
		t.Errorf("entry 2: first %d, %d messages, offsets %v; want 1, 3, %v", e.First, len(e.Messages), e.TopicOffsets, want)
	}
}
