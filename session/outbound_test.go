package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

var sendErrorTests = []struct {
	name string
	msg  wire.Message
	want error
}{
	{"zero type", wire.Message{Data: []byte("x")}, wire.ErrInvalidMessage},
	{"unknown type", wire.Message{Type: 7, Data: []byte("x")}, wire.ErrInvalidMessage},
	{"invalid UTF-8", wire.Message{Type: wire.Text, Data: []byte{'a', 0xff, 'b'}}, wire.ErrInvalidMessage},
	{"truncated rune", wire.Message{Type: wire.Text, Data: []byte("é")[:1]}, wire.ErrInvalidMessage},
	{"text too big", wire.Message{Type: wire.Text, Data: []byte(strings.Repeat("x", 1025))}, wire.ErrMessageTooBig},
	{"binary too big", wire.Message{Type: wire.Binary, Data: make([]byte, 1025)}, wire.ErrMessageTooBig},
	{"binary not UTF-8", wire.Message{Type: wire.Binary, Data: []byte{0xff, 0xfe}}, nil},
	{"text at the limit", wire.Message{Type: wire.Text, Data: []byte(strings.Repeat("é", 512))}, nil},
	{"empty text", wire.Message{Type: wire.Text}, nil},
	{"empty binary", wire.Message{Type: wire.Binary}, nil},
}

func TestSendValidates(t *testing.T) {
	for _, tt := range sendErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(t, nil) // MaxMessageBytes 1024
			err := s.Send(testContext(t), tt.msg)
			if !errors.Is(err, tt.want) { // errors.Is(err, nil) holds only for err == nil
				t.Fatalf("Send(%v %q) = %v, want %v", tt.msg.Type, tt.msg.Data, err, tt.want)
			}
			wantSent := uint64(0)
			if tt.want == nil {
				wantSent = 1
			}
			if sent, _ := s.Sent(); sent != wantSent {
				t.Errorf("Send(%v %q): Sent() = %d, want %d", tt.msg.Type, tt.msg.Data, sent, wantSent)
			}
		})
	}
}

func TestSendCopiesData(t *testing.T) {
	s := newSession(t, nil)
	buf := []byte("hello")
	if err := s.Send(testContext(t), wire.Message{Type: wire.Binary, Data: buf}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	copy(buf, "XXXXX")
	b := pull(t, attach(t, s, session.AttachOptions{}), 1<<20)
	if got := strs(b.Messages); len(got) != 1 || got[0] != "hello" || b.Messages[0].Type != wire.Binary {
		t.Errorf("Pull after the caller reused its buffer = %q, want [hello] (binary)", got)
	}
}

func TestSendAfterClose(t *testing.T) {
	s := newSession(t, nil)
	if err := s.Close(4100, "bye"); err != nil {
		t.Fatalf("Close(4100) = %v, want nil", err)
	}
	err := s.Send(testContext(t), text("late"))
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce != (wire.CloseError{Code: 4100, Reason: "bye"}) {
		t.Errorf("Send after Close = %v, want CloseError{4100 bye}", err)
	}
}

var closeCodeTests = []struct {
	code wire.StatusCode
	ok   bool
}{
	{wire.StatusNormalClosure, true},
	{wire.StatusGoingAway, true},
	{wire.StatusAbnormalClosure, false}, // local only, never sent
	{1005, false},
	{999, false},
	{wire.StatusSlowConsumer, true},
	{wire.StatusApplicationMin, true},
	{4999, true},
	{5000, false},
}

func TestCloseCode(t *testing.T) {
	for _, tt := range closeCodeTests {
		s := newSession(t, nil)
		err := s.Close(tt.code, "")
		if (err == nil) != tt.ok {
			t.Errorf("Close(%d) = %v, want ok %v", tt.code, err, tt.ok)
		}
		if got := s.Err() != nil; got != tt.ok {
			t.Errorf("Close(%d): Err() = %v, want closed %v", tt.code, s.Err(), tt.ok)
		}
	}
}

// ackSteps is a run of Acknowledge calls on a session that sent 5
// messages.
var ackSteps = []struct {
	ack       uint64
	wantErr   error
	wantAcked uint64
}{
	{0, nil, 0},
	{3, nil, 3},
	{2, nil, 3}, // lower than before: ignored
	{3, nil, 3},
	{6, session.ErrBadAck, 3},
	{5, nil, 5},
	{1, nil, 5},
	{7, session.ErrBadAck, 5},
}

func TestAcknowledge(t *testing.T) {
	s := newSession(t, nil)
	sendAll(t, s, "1", "2", "3", "4", "5")
	for _, st := range ackSteps {
		err := s.Acknowledge(st.ack)
		if !errors.Is(err, st.wantErr) {
			t.Errorf("Acknowledge(%d) = %v, want %v", st.ack, err, st.wantErr)
		}
		if sent, acked := s.Sent(); sent != 5 || acked != st.wantAcked {
			t.Errorf("Acknowledge(%d): Sent() = %d, %d, want 5, %d", st.ack, sent, acked, st.wantAcked)
		}
	}
}

// TestAcknowledgeAheadOfLink checks that an attached link still carries
// every message after its attach's received count when the client
// acknowledges some of them meanwhile through another channel (a send
// request's received, stating messages a long poll brought while a
// WebSocket attached): the client counts a connection's messages from its
// attach on, so a link that skipped them would make it drop as duplicates
// as many new ones (the demo's "messages lost" across fast connect's
// upgrade). Once handed out, the acknowledged messages are forgotten.
func TestAcknowledgeAheadOfLink(t *testing.T) {
	s := newSession(t, nil)
	sendAll(t, s, "1", "2", "3", "4", "5")
	poll := attach(t, s, session.AttachOptions{Transport: "longpoll"})
	if b := pull(t, poll, 1<<20); b.First != 1 || len(b.Messages) != 5 {
		t.Fatalf("the poll pulled %d from %d, want 5 from 1", len(b.Messages), b.First)
	}
	// A WebSocket attaches before the poll's answer arrives; then it
	// arrives, and the client acknowledges it.
	ws := attach(t, s, session.AttachOptions{Transport: "websocket"})
	if err := s.Acknowledge(3); err != nil {
		t.Fatalf("Acknowledge(3) = %v, want nil", err)
	}
	if sent, acked := s.Sent(); sent != 5 || acked != 3 {
		t.Errorf("Sent() = %d, %d, want 5, 3", sent, acked)
	}
	sendAll(t, s, "6")
	b := pull(t, ws, 1<<20)
	if b.First != 1 || join(strs(b.Messages)) != "1,2,3,4,5,6" {
		t.Fatalf("the WebSocket pulled %d %q, want 1 [1 2 3 4 5 6]", b.First, strs(b.Messages))
	}
	// A later attach finds the three acknowledged.
	if _, err := s.Attach(session.AttachOptions{Received: 2}); !errors.Is(err, session.ErrStaleAttach) {
		t.Errorf("Attach(Received 2) = %v, want ErrStaleAttach", err)
	}
	sendAll(t, s, "7")
	next := attach(t, s, session.AttachOptions{Received: 3})
	if b := pull(t, next, 1<<20); b.First != 4 || join(strs(b.Messages)) != "4,5,6,7" {
		t.Errorf("Attach(Received 3) then Pull = %d %q, want 4 [4 5 6 7]", b.First, strs(b.Messages))
	}
}

// slowConfig queues at most two messages of 10 bytes in all toward the
// client.
func slowConfig(p session.SlowConsumerPolicy) *session.Config {
	cfg := testConfig()
	cfg.MaxQueuedBytes = 10 + 2*session.MessageOverhead
	cfg.SlowConsumer = p
	return cfg
}

func TestSlowConsumerClose(t *testing.T) {
	s := newSession(t, slowConfig(session.SlowConsumerClose))
	sendAll(t, s, "123456")
	err := s.Send(testContext(t), text("abcdef"))
	wantClose(t, "Send over MaxQueuedBytes", err, wire.StatusSlowConsumer)
	wantClose(t, "Err()", s.Err(), wire.StatusSlowConsumer)
	l := attach(t, s, session.AttachOptions{})
	b := pull(t, l, 1<<20)
	if join(strs(b.Messages)) != "123456" || b.Close == nil || b.Close.Code != wire.StatusSlowConsumer {
		t.Errorf("Pull = %q close %v, want [123456] then close %d", strs(b.Messages), b.Close, wire.StatusSlowConsumer)
	}
}

func TestSlowConsumerDrop(t *testing.T) {
	s := newSession(t, slowConfig(session.SlowConsumerDrop))
	sendAll(t, s, "123456", "7890") // 10 bytes in two messages: exactly the limit
	for i := range 3 {
		if err := s.Send(testContext(t), text("x")); !errors.Is(err, session.ErrDropped) {
			t.Fatalf("Send #%d over the limit = %v, want ErrDropped", i, err)
		}
	}
	if got := s.Dropped(); got != 3 {
		t.Errorf("Dropped() = %d, want 3", got)
	}
	if sent, _ := s.Sent(); sent != 2 {
		t.Errorf("Sent() after drops = %d, want 2", sent)
	}
	if s.Err() != nil {
		t.Errorf("Err() after drops = %v, want nil", s.Err())
	}
	l := attach(t, s, session.AttachOptions{})
	if b := pull(t, l, 1<<20); join(strs(b.Messages)) != "123456,7890" || b.First != 1 {
		t.Errorf("Pull = %d %q, want 1 [123456 7890]", b.First, strs(b.Messages))
	}
	if err := s.Acknowledge(1); err != nil {
		t.Fatalf("Acknowledge(1) = %v", err)
	}
	sendAll(t, s, "after")
	if b := pull(t, l, 1<<20); join(strs(b.Messages)) != "after" || b.First != 3 {
		t.Errorf("Pull after room was made = %d %q, want 3 [after]", b.First, strs(b.Messages))
	}
}

// TestSlowConsumerLargeMessage checks that one message over MaxQueuedBytes
// still goes when nothing else is queued.
func TestSlowConsumerLargeMessage(t *testing.T) {
	for _, p := range []session.SlowConsumerPolicy{session.SlowConsumerClose, session.SlowConsumerDrop, session.SlowConsumerBlock} {
		s := newSession(t, slowConfig(p))
		if err := s.Send(testContext(t), text("this is longer than ten")); err != nil {
			t.Errorf("%v: Send of a large message on an empty queue = %v, want nil", p, err)
		}
	}
}

func TestSlowConsumerBlock(t *testing.T) {
	s := newSession(t, slowConfig(session.SlowConsumerBlock))
	sendAll(t, s, "123456")
	done := make(chan error, 1)
	go func() { done <- s.Send(testContext(t), text("abcdef")) }()
	// The Send cannot complete before the acknowledgement, however the
	// goroutines are scheduled.
	if sent, _ := s.Sent(); sent != 1 {
		t.Fatalf("Sent() while Send waits = %d, want 1", sent)
	}
	if err := s.Acknowledge(1); err != nil {
		t.Fatalf("Acknowledge(1) = %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Send after Acknowledge made room = %v, want nil", err)
	}
	if sent, acked := s.Sent(); sent != 2 || acked != 1 {
		t.Errorf("Sent() = %d, %d, want 2, 1", sent, acked)
	}

	ctx, cancel := context.WithCancel(testContext(t))
	go func() { done <- s.Send(ctx, text("ghijkl")) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Send with its context canceled = %v, want context.Canceled", err)
	}
	if sent, _ := s.Sent(); sent != 2 {
		t.Errorf("Sent() after a canceled Send = %d, want 2", sent)
	}
}

// TestSlowConsumerBlockClose checks that closing the session ends a waiting
// Send with the CloseError.
func TestSlowConsumerBlockClose(t *testing.T) {
	s := newSession(t, slowConfig(session.SlowConsumerBlock))
	sendAll(t, s, "123456")
	done := make(chan error, 1)
	go func() { done <- s.Send(testContext(t), text("abcdef")) }()
	s.Close(wire.StatusNormalClosure, "")
	wantClose(t, "waiting Send after Close", <-done, wire.StatusNormalClosure)
}

var policyNames = []struct {
	p    session.SlowConsumerPolicy
	want string
}{
	{session.SlowConsumerClose, "close"},
	{session.SlowConsumerDrop, "drop"},
	{session.SlowConsumerBlock, "block"},
	{9, "unknown"},
}

func TestSlowConsumerPolicyString(t *testing.T) {
	for _, tt := range policyNames {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("SlowConsumerPolicy(%d).String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// TestSlowConsumerEmptyMessages checks that empty messages fill the queue
// too: each counts MessageOverhead.
func TestSlowConsumerEmptyMessages(t *testing.T) {
	cfg := testConfig()
	cfg.MaxQueuedBytes = 100 * session.MessageOverhead
	cfg.SlowConsumer = session.SlowConsumerClose
	s := newSession(t, cfg)
	for i := range 100 {
		if err := s.Send(testContext(t), text("")); err != nil {
			t.Fatalf("Send of empty message %d = %v, want nil", i+1, err)
		}
	}
	wantClose(t, "Send of empty message 101", s.Send(testContext(t), text("")), wire.StatusSlowConsumer)
}

// TestSlowConsumerBlockInCallback: a Send made by a message callback does
// not wait for room under SlowConsumerBlock, since the acknowledgements
// that would make it may be held up behind the callback (a WebSocket's
// reader runs it): the queue goes over the bound, up to twice it, then the
// session closes with 4002 instead of hanging the delivery.
func TestSlowConsumerBlockInCallback(t *testing.T) {
	s := newSession(t, slowConfig(session.SlowConsumerBlock)) // room for 2 messages of 5 bytes
	var errs []error
	s.OnMessage(func(m wire.Message) {
		errs = append(errs, s.Send(testContext(t), m))
	})
	// Nobody acknowledges: the third and fourth echoes go over the bound,
	// the fifth would pass twice it.
	if err := s.Deliver(testContext(t), 1, texts("12345", "22345", "32345", "42345")); err != nil {
		t.Fatalf("Deliver = %v, want nil", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("echo #%d = %v, want nil (up to twice MaxQueuedBytes)", i+1, err)
		}
	}
	if sent, _ := s.Sent(); sent != 4 {
		t.Errorf("Sent() = %d, want 4", sent)
	}
	errs = nil
	if err := s.Deliver(testContext(t), 5, texts("52345")); err != nil {
		t.Fatalf("Deliver of the fifth = %v, want nil", err)
	}
	if len(errs) != 1 {
		t.Fatalf("callbacks = %d, want 1", len(errs))
	}
	wantClose(t, "the echo past twice the bound", errs[0], wire.StatusSlowConsumer)
	wantClose(t, "Err()", s.Err(), wire.StatusSlowConsumer)

	// Outside a callback, Send still waits for room.
	s2 := newSession(t, slowConfig(session.SlowConsumerBlock))
	sendAll(t, s2, "12345", "22345")
	ctx, cancel := context.WithTimeout(testContext(t), 50*time.Millisecond)
	defer cancel()
	if err := s2.Send(ctx, text("32345")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send over the bound outside a callback = %v, want it to wait until its context ends", err)
	}
}
