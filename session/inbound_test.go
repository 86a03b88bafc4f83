package session_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

type delivery struct {
	seq     uint64
	msgs    []string
	wantErr error
}

var deliverTests = []struct {
	name       string
	deliveries []delivery
	want       string          // what Recv returns, in order
	wantCode   wire.StatusCode // the session's close code, or 0 while open
}{
	{"in order", []delivery{{1, []string{"a", "b"}, nil}, {3, []string{"c"}, nil}}, "a,b,c", 0},
	{"retried", []delivery{{1, []string{"a", "b"}, nil}, {1, []string{"a", "b"}, nil}}, "a,b", 0},
	{"overlapping", []delivery{{1, []string{"a", "b"}, nil}, {2, []string{"b", "c", "d"}, nil}}, "a,b,c,d", 0},
	{"old", []delivery{{1, []string{"a", "b", "c"}, nil}, {2, []string{"b"}, nil}}, "a,b,c", 0},
	{"empty", []delivery{{1, nil, nil}, {1, []string{"a"}, nil}}, "a", 0},
	{"seq zero", []delivery{{0, []string{"a"}, session.ErrSequenceGap}}, "", 0},
	{"gap at start", []delivery{{2, []string{"b"}, session.ErrSequenceGap}}, "", wire.StatusResumeGap},
	{"gap", []delivery{{1, []string{"a"}, nil}, {3, []string{"c"}, session.ErrSequenceGap}}, "a", wire.StatusResumeGap},
	{"after a gap", []delivery{
		{1, []string{"a"}, nil},
		{3, []string{"c"}, session.ErrSequenceGap},
		{2, []string{"b"}, wire.CloseError{Code: wire.StatusResumeGap, Reason: "sequence gap"}},
	}, "a", wire.StatusResumeGap},
	{"too big", []delivery{
		{1, []string{"a", strings.Repeat("x", 1025), "c"}, wire.ErrMessageTooBig},
	}, "a", wire.StatusMessageTooBig},
}

func TestDeliver(t *testing.T) {
	for _, tt := range deliverTests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(t, nil)
			for _, d := range tt.deliveries {
				err := s.Deliver(testContext(t), d.seq, texts(d.msgs...))
				if !errors.Is(err, d.wantErr) {
					t.Errorf("Deliver(%d, %q) = %v, want %v", d.seq, d.msgs, err, d.wantErr)
				}
			}
			n := 0
			if tt.want != "" {
				n = len(strings.Split(tt.want, ","))
			}
			if got := s.Received(); got != uint64(n) {
				t.Errorf("Received() = %d, want %d", got, n)
			}
			if got := join(recvAll(t, s, n)); got != tt.want {
				t.Errorf("Recv = %q, want %q", got, tt.want)
			}
			if tt.wantCode == 0 {
				if err := s.Err(); err != nil {
					t.Errorf("Err() = %v, want nil", err)
				}
				return
			}
			// A fault closes the session once the messages before it
			// are read: when Recv asks for the next one.
			_, err := s.Recv(testContext(t))
			wantClose(t, "Recv after the queued messages", err, tt.wantCode)
			wantClose(t, "Err()", s.Err(), tt.wantCode)
		})
	}
}

// TestDeliverKeepsType checks that binary and text messages come out of
// Recv as they went in.
func TestDeliverKeepsType(t *testing.T) {
	s := newSession(t, nil)
	in := []wire.Message{{Type: wire.Binary, Data: []byte{0, 0xff}}, text("t")}
	if err := s.Deliver(testContext(t), 1, in); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	for _, want := range in {
		m, err := s.Recv(testContext(t))
		if err != nil || m.Type != want.Type || string(m.Data) != string(want.Data) {
			t.Errorf("Recv = %v %q, %v, want %v %q", m.Type, m.Data, err, want.Type, want.Data)
		}
	}
}

func TestRecvContext(t *testing.T) {
	s := newSession(t, nil)
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	if _, err := s.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Recv with a canceled context = %v, want context.Canceled", err)
	}
}

// TestRecvWaits checks that a waiting Recv is handed a later delivery.
func TestRecvWaits(t *testing.T) {
	s := newSession(t, nil)
	got := make(chan string, 1)
	go func() {
		m, err := s.Recv(testContext(t))
		got <- fmt.Sprintf("%s %v", m.Data, err)
	}()
	if err := s.Deliver(testContext(t), 1, texts("hi")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	if g := <-got; g != "hi <nil>" {
		t.Errorf("waiting Recv = %q, want %q", g, "hi <nil>")
	}
}

// TestDeliverConcurrent has many goroutines deliver overlapping ranges of
// the same messages, as retried send requests do, while a reader receives:
// each message must come out exactly once and in order.
func TestDeliverConcurrent(t *testing.T) {
	const (
		total   = 500
		senders = 8
	)
	cfg := testConfig()
	cfg.MaxQueuedBytes = 64 // small, so that deliveries also wait for room
	s := newSession(t, cfg)
	all := make([]wire.Message, total)
	for i := range all {
		all[i] = text(fmt.Sprint(i + 1))
	}
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		step := 3 + g%4
		size := step + 1 + g%5 // size > step: every range overlaps the one before
		wg.Go(func() {
			for start := 1; start <= total; start += step {
				end := min(start-1+size, total)
				if err := s.Deliver(ctx, uint64(start), all[start-1:end]); err != nil {
					errs <- fmt.Errorf("Deliver(%d, %d messages) = %w", start, end-start+1, err)
					return
				}
			}
		})
	}
	for i := range total {
		m, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv #%d = %v", i+1, err)
		}
		if got, want := string(m.Data), fmt.Sprint(i+1); got != want {
			t.Fatalf("Recv #%d = %q, want %q", i+1, got, want)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.Received(); got != total {
		t.Errorf("Received() = %d, want %d", got, total)
	}
}

func TestDeliverBackpressure(t *testing.T) {
	cfg := testConfig()
	cfg.MaxQueuedBytes = 10 + 2*session.MessageOverhead // two messages of 10 bytes in all
	s := newSession(t, cfg)
	if err := s.Deliver(testContext(t), 1, texts("123456")); err != nil {
		t.Fatalf("Deliver(1) = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Deliver(testContext(t), 2, texts("abcdef", "g")) }()
	// However the goroutines are scheduled, nothing more fits until Recv.
	if got := s.Received(); got != 1 {
		t.Fatalf("Received() while Deliver waits for room = %d, want 1", got)
	}
	if got := recvAll(t, s, 1); join(got) != "123456" {
		t.Fatalf("Recv = %q, want [123456]", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Deliver after Recv made room = %v, want nil", err)
	}
	if got := join(recvAll(t, s, 2)); got != "abcdef,g" {
		t.Errorf("Recv = %q, want %q", got, "abcdef,g")
	}

	// A message larger than the bound goes through an empty queue.
	big := strings.Repeat("B", cfg.MaxQueuedBytes+1)
	if err := s.Deliver(testContext(t), 4, texts(big)); err != nil {
		t.Fatalf("Deliver of a large message to an empty queue = %v, want nil", err)
	}

	ctx, cancel := context.WithCancel(testContext(t))
	go func() { done <- s.Deliver(ctx, 5, texts("x")) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("waiting Deliver with its context canceled = %v, want context.Canceled", err)
	}
	if got := s.Received(); got != 4 {
		t.Errorf("Received() after a canceled Deliver = %d, want 4", got)
	}
	// The canceled delivery is retried and accepted once there is room.
	recvAll(t, s, 1)
	if err := s.Deliver(testContext(t), 5, texts("x")); err != nil {
		t.Errorf("retried Deliver = %v, want nil", err)
	}
}

// TestDeliverWaitingClose checks that closing the session ends a Deliver
// waiting for room.
func TestDeliverWaitingClose(t *testing.T) {
	cfg := testConfig()
	cfg.MaxQueuedBytes = 1
	s := newSession(t, cfg)
	if err := s.Deliver(testContext(t), 1, texts("a")); err != nil {
		t.Fatalf("Deliver(1) = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Deliver(testContext(t), 2, texts("b")) }()
	s.Close(wire.StatusNormalClosure, "")
	wantClose(t, "waiting Deliver after Close", <-done, wire.StatusNormalClosure)
}

// TestOnMessageConcurrent: with a message callback, deliveries from many
// goroutines (retried, overlapping uploads) reach it exactly once each, in
// order, one call at a time; messages queued before OnMessage come first;
// OnClose runs once, after the last callback, with the close.
func TestOnMessageConcurrent(t *testing.T) {
	const (
		total   = 500
		senders = 8
		early   = 3 // delivered before OnMessage, so queued for Recv
	)
	s := newSession(t, testConfig())
	all := make([]wire.Message, total)
	for i := range all {
		all[i] = text(fmt.Sprint(i + 1))
	}
	ctx := testContext(t)
	if err := s.Deliver(ctx, 1, all[:early]); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		got      []string
		inFlight int
		overlap  bool
	)
	closed := make(chan string, 2)
	s.OnClose(func(err error) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		closed <- fmt.Sprintf("%d messages, %v", n, err)
	})
	s.OnMessage(func(m wire.Message) {
		mu.Lock()
		inFlight++
		overlap = overlap || inFlight > 1
		got = append(got, string(m.Data))
		mu.Unlock()
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := range senders {
		step := 3 + g%4
		size := step + 1 + g%5
		wg.Go(func() {
			for start := 1; start <= total; start += step {
				end := min(start-1+size, total)
				if err := s.Deliver(ctx, uint64(start), all[start-1:end]); err != nil {
					t.Errorf("Deliver(%d) = %v", start, err)
					return
				}
			}
		})
	}
	wg.Wait()
	s.Close(wire.StatusCode(4100), "done")
	select {
	case c := <-closed:
		if want := fmt.Sprintf("%d messages, %v", total, wire.CloseError{Code: 4100, Reason: "done"}); c != want {
			t.Fatalf("OnClose saw %s, want %s", c, want)
		}
	case <-ctx.Done():
		t.Fatal("OnClose was not called")
	}
	mu.Lock()
	defer mu.Unlock()
	if overlap {
		t.Error("two callbacks ran at once")
	}
	for i, m := range got {
		if m != fmt.Sprint(i+1) {
			t.Fatalf("callback %d got %q, want %d", i, m, i+1)
		}
	}
	if _, err := s.Recv(ctx); !errors.As(err, new(wire.CloseError)) {
		t.Errorf("Recv after OnMessage = %v, want the CloseError", err)
	}
}

// TestFaultAfterHandledMessages checks that a client's fault closes the
// session after the application has handled the messages before it, so
// that what it sent in answer goes out before the close frame: with Recv,
// with a message callback, and with an application that reads nothing
// (FaultWait).
func TestFaultAfterHandledMessages(t *testing.T) {
	tooBig := wire.CloseError{Code: wire.StatusMessageTooBig, Reason: "message too big"}
	// outgoing returns the messages and close frame the client gets.
	outgoing := func(t *testing.T, s *session.Local) string {
		l := attach(t, s, session.AttachOptions{Transport: "test"})
		defer l.Detach()
		var got []string
		for {
			b := pull(t, l, 1<<20)
			got = append(got, strs(b.Messages)...)
			if b.Close != nil {
				return fmt.Sprintf("%s; close %d", join(got), b.Close.Code)
			}
		}
	}
	t.Run("recv", func(t *testing.T) {
		s := newSession(t, nil)
		if err := s.Deliver(testContext(t), 1, texts("a", "b")); err != nil {
			t.Fatal(err)
		}
		s.Fault(tooBig)
		if err := s.Err(); err != nil {
			t.Fatalf("Err() before the application read the messages = %v, want nil", err)
		}
		for _, want := range []string{"a", "b"} {
			m, err := s.Recv(testContext(t))
			if err != nil || string(m.Data) != want {
				t.Fatalf("Recv = %q, %v, want %q", m.Data, err, want)
			}
			sendAll(t, s, "echo "+want)
		}
		_, err := s.Recv(testContext(t))
		wantClose(t, "Recv after the messages before the fault", err, wire.StatusMessageTooBig)
		if got, want := outgoing(t, s), "echo a,echo b; close 1009"; got != want {
			t.Errorf("the client gets %q, want %q", got, want)
		}
	})
	t.Run("waiting recv", func(t *testing.T) {
		s := newSession(t, nil)
		done := make(chan error)
		go func() {
			_, err := s.Recv(testContext(t))
			done <- err
		}()
		// Whether Recv waits already or comes later, it returns the
		// close: no message came before the fault.
		s.Fault(tooBig)
		wantClose(t, "Recv", <-done, wire.StatusMessageTooBig)
	})
	t.Run("callback", func(t *testing.T) {
		s := newSession(t, nil)
		s.OnMessage(func(m wire.Message) { sendAll(t, s, "echo "+string(m.Data)) })
		// The callbacks of the messages before the gap have run: the
		// session closes at once.
		if err := s.Deliver(testContext(t), 1, texts("a", "b")); err != nil {
			t.Fatal(err)
		}
		if err := s.Deliver(testContext(t), 4, texts("d")); !errors.Is(err, session.ErrSequenceGap) {
			t.Fatalf("Deliver with a gap = %v, want ErrSequenceGap", err)
		}
		wantClose(t, "Err() after the callbacks", s.Err(), wire.StatusResumeGap)
		if got, want := outgoing(t, s), "echo a,echo b; close 4000"; got != want {
			t.Errorf("the client gets %q, want %q", got, want)
		}
	})
	t.Run("nobody reads", func(t *testing.T) {
		s := newSession(t, nil)
		if err := s.Deliver(testContext(t), 1, texts("a")); err != nil {
			t.Fatal(err)
		}
		s.Fault(tooBig)
		s.Close(wire.StatusNormalClosure, "") // the fault's code stays
		if got, want := outgoing(t, s), "; close 1009"; got != want {
			t.Errorf("the client gets %q, want %q", got, want)
		}
		s2 := newSession(t, nil)
		if err := s2.Deliver(testContext(t), 1, texts("a")); err != nil {
			t.Fatal(err)
		}
		s2.Fault(tooBig)
		select {
		case <-s2.Context().Done(): // FaultWait passed
		case <-testContext(t).Done():
			t.Fatal("the session did not close")
		}
		wantClose(t, "Err()", s2.Err(), wire.StatusMessageTooBig)
	})
}
