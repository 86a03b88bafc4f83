package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

func TestPullInOrder(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{Transport: "test"})
	if got := s.Transport(); got != "test" {
		t.Errorf("Transport() = %q, want %q", got, "test")
	}
	sendAll(t, s, "a", "b", "c")
	b := pull(t, l, 1<<20)
	if b.First != 1 || join(strs(b.Messages)) != "a,b,c" || b.AckDue || b.Close != nil {
		t.Errorf("Pull = %+v, want First 1 [a b c] only", b)
	}
	sendAll(t, s, "d")
	b = pull(t, l, 1<<20)
	if b.First != 4 || join(strs(b.Messages)) != "d" {
		t.Errorf("second Pull = %d %q, want 4 [d]", b.First, strs(b.Messages))
	}
}

// TestPullWaitsForSend checks that a Pull waiting on an idle link returns
// the message a later Send queues.
func TestPullWaitsForSend(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{})
	got := make(chan session.Batch, 1)
	go func() {
		b, _ := l.Pull(testContext(t), longWait, 1<<20)
		got <- b
	}()
	sendAll(t, s, "late")
	if b := <-got; b.First != 1 || join(strs(b.Messages)) != "late" {
		t.Errorf("waiting Pull = %d %q, want 1 [late]", b.First, strs(b.Messages))
	}
}

// ovh is what each message counts for besides its data.
const ovh = session.MessageOverhead

var splitTests = []struct {
	sizes    []int // bytes of each message sent
	maxBytes int
	want     [][]int // batches, as indexes of messages
}{
	{[]int{10, 10, 10, 10}, 2*(10+ovh) + 5, [][]int{{0, 1}, {2, 3}}},
	{[]int{10, 10, 10, 10}, 4 * (10 + ovh), [][]int{{0, 1, 2, 3}}},
	{[]int{10, 10, 10, 10}, 4*(10+ovh) - 1, [][]int{{0, 1, 2}, {3}}},
	{[]int{100, 5}, 10 + ovh, [][]int{{0}, {1}}},         // larger than maxBytes: alone
	{[]int{5, 100, 5}, 10 + ovh, [][]int{{0}, {1}, {2}}}, // never joined to a large one
	{[]int{3, 3, 3}, 0, [][]int{{0}, {1}, {2}}},          // at least one message
	{[]int{0, 0, 0}, 2 * ovh, [][]int{{0, 1}, {2}}},      // empty messages count ovh each
	{[]int{0, 0, 0}, 3*ovh - 1, [][]int{{0, 1}, {2}}},
}

func TestPullMaxBytes(t *testing.T) {
	for _, tt := range splitTests {
		s := newSession(t, nil)
		for i, n := range tt.sizes {
			data := bytes.Repeat([]byte{byte('a' + i)}, n)
			if err := s.Send(testContext(t), wire.Message{Type: wire.Binary, Data: data}); err != nil {
				t.Fatalf("Send = %v", err)
			}
		}
		l := attach(t, s, session.AttachOptions{})
		var got [][]int
		next := uint64(1)
		for range tt.want {
			b := pull(t, l, tt.maxBytes)
			if b.First != next {
				t.Errorf("sizes %v, maxBytes %d: Pull First = %d, want %d", tt.sizes, tt.maxBytes, b.First, next)
			}
			var batch []int
			for j, m := range b.Messages {
				i := int(b.First) - 1 + j
				if len(m.Data) != tt.sizes[i] {
					t.Errorf("sizes %v: message %d has %d bytes, want %d", tt.sizes, i+1, len(m.Data), tt.sizes[i])
				}
				batch = append(batch, i)
			}
			got = append(got, batch)
			next += uint64(len(b.Messages))
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Pull(maxBytes %d) of sizes %v = %v, want %v", tt.maxBytes, tt.sizes, got, tt.want)
		}
	}
}

func TestPullHeartbeat(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{AcksInBand: true})
	b, err := l.Pull(testContext(t), time.Millisecond, 1<<20)
	if err != nil || !b.Empty() {
		t.Errorf("Pull on an idle link = %+v, %v, want an empty batch", b, err)
	}
	// The heartbeat wait is per Pull: the next one starts over.
	sendAll(t, s, "x")
	b, err = l.Pull(testContext(t), time.Millisecond, 1<<20)
	if err != nil || join(strs(b.Messages)) != "x" {
		t.Errorf("Pull after Send = %q, %v, want [x]", strs(b.Messages), err)
	}
}

func TestPullContext(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{})
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	if _, err := l.Pull(ctx, longWait, 1<<20); !errors.Is(err, context.Canceled) {
		t.Errorf("Pull with a canceled context = %v, want context.Canceled", err)
	}
}

var replayTests = []struct {
	received  uint64
	wantFirst uint64
	want      string
}{
	{0, 1, "1,2,3,4,5"},
	{2, 3, "3,4,5"},
	{4, 5, "5"},
	{5, 0, ""},
}

func TestReattachReplays(t *testing.T) {
	for _, tt := range replayTests {
		s := newSession(t, nil)
		sendAll(t, s, "1", "2", "3", "4", "5")
		old := attach(t, s, session.AttachOptions{})
		pull(t, old, 1<<20) // everything handed out: the client lost some
		old.Detach()
		l := attach(t, s, session.AttachOptions{Received: tt.received})
		if sent, acked := s.Sent(); sent != 5 || acked != tt.received {
			t.Errorf("Attach(Received %d): Sent() = %d, %d, want 5, %d", tt.received, sent, acked, tt.received)
		}
		b, err := l.Pull(testContext(t), time.Millisecond, 1<<20)
		if err != nil || b.First != tt.wantFirst || join(strs(b.Messages)) != tt.want || b.Close != nil {
			t.Errorf("Attach(Received %d) then Pull = %d %q close %v, %v, want %d %q", tt.received,
				b.First, strs(b.Messages), b.Close, err, tt.wantFirst, tt.want)
		}
	}
}

var gapTests = []struct {
	name     string
	acked    uint64 // acknowledged before the attach
	received uint64
}{
	{"beyond sent", 0, 6},
	{"far beyond sent", 0, 1 << 40},
}

// TestStaleAttach: an attach stating fewer messages than the client has
// acknowledged is an old request arriving late; it is refused, and neither
// the session nor the connection attached is disturbed.
func TestStaleAttach(t *testing.T) {
	for _, tt := range []struct {
		name            string
		acked, received uint64
	}{
		{"below acknowledged", 3, 2},
		{"zero after an acknowledgement", 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(t, nil)
			sendAll(t, s, "1", "2", "3", "4", "5")
			current := attach(t, s, session.AttachOptions{Received: tt.acked})
			if l, err := s.Attach(session.AttachOptions{Received: tt.received}); !errors.Is(err, session.ErrStaleAttach) || l != nil {
				t.Fatalf("Attach(Received %d) after %d acknowledged = %v, %v; want ErrStaleAttach", tt.received, tt.acked, l, err)
			}
			if err := s.Err(); err != nil {
				t.Fatalf("Err() after a stale attach = %v, want the session open", err)
			}
			b := pull(t, current, 1<<20)
			if b.First != tt.acked+1 || len(b.Messages) != int(5-tt.acked) {
				t.Fatalf("the attached link then pulled %d messages from %d, want %d from %d", len(b.Messages), b.First, 5-tt.acked, tt.acked+1)
			}
		})
	}
}

func TestReattachGap(t *testing.T) {
	for _, tt := range gapTests {
		t.Run(tt.name, func(t *testing.T) {
			finished := 0
			s := session.New(testConfig(), session.RequestInfo{}, func(*session.Local) { finished++ })
			t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusGoingAway}) })
			sendAll(t, s, "1", "2", "3", "4", "5")
			if err := s.Acknowledge(tt.acked); err != nil {
				t.Fatalf("Acknowledge(%d) = %v", tt.acked, err)
			}
			l := attach(t, s, session.AttachOptions{Received: tt.received})
			wantClose(t, "Err() after a gap", s.Err(), wire.StatusResumeGap)
			b := pull(t, l, 1<<20)
			if len(b.Messages) != 0 || b.Close == nil || b.Close.Code != wire.StatusResumeGap {
				t.Fatalf("Attach(Received %d) then Pull = %q close %v, want no message, close %d",
					tt.received, strs(b.Messages), b.Close, wire.StatusResumeGap)
			}
			if _, err := l.Pull(testContext(t), longWait, 1<<20); !errors.Is(err, session.ErrFinished) {
				t.Errorf("Pull after the close = %v, want ErrFinished", err)
			}
			if err := s.Send(testContext(t), text("late")); wire.CloseStatus(err) != wire.StatusResumeGap {
				t.Errorf("Send after a gap = %v, want CloseError %d", err, wire.StatusResumeGap)
			}
			l.Detach()
			if !s.Finished() || finished != 1 {
				t.Errorf("after Detach: Finished() = %v, onFinish calls = %d, want true, 1", s.Finished(), finished)
			}
		})
	}
}

func TestSupersede(t *testing.T) {
	s := newSession(t, nil)
	sendAll(t, s, "a")
	l1 := attach(t, s, session.AttachOptions{Transport: "one"})
	pull(t, l1, 1<<20)
	errc := make(chan error, 1)
	go func() {
		_, err := l1.Pull(testContext(t), longWait, 1<<20)
		errc <- err
	}()
	l2 := attach(t, s, session.AttachOptions{Transport: "two", Received: 1})
	if err := <-errc; !errors.Is(err, session.ErrSuperseded) {
		t.Errorf("Pull on the superseded link = %v, want ErrSuperseded", err)
	}
	select {
	case <-l1.Done():
	default:
		t.Errorf("superseded link's Done() is open, want closed")
	}
	select {
	case <-l2.Done():
		t.Errorf("new link's Done() is closed, want open")
	default:
	}
	l1.Detach() // the old connection's cleanup must not touch the new one
	if got := s.Transport(); got != "two" {
		t.Errorf("Transport() after the old link's Detach = %q, want %q", got, "two")
	}
	if s.Finished() || s.Err() != nil {
		t.Errorf("after the old link's Detach: Finished() = %v, Err() = %v, want false, nil", s.Finished(), s.Err())
	}
	sendAll(t, s, "b")
	if b := pull(t, l2, 1<<20); b.First != 2 || join(strs(b.Messages)) != "b" {
		t.Errorf("Pull on the new link = %d %q, want 2 [b]", b.First, strs(b.Messages))
	}
}

func TestAcksInBandEvery32(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{AcksInBand: true})
	msgs := make([]wire.Message, 32)
	for i := range msgs {
		msgs[i] = text(fmt.Sprint(i + 1))
	}
	if err := s.Deliver(testContext(t), 1, msgs); err != nil {
		t.Fatalf("Deliver(1, 32 messages) = %v", err)
	}
	// The wait is long: the acknowledgement is due at once.
	b := pull(t, l, 1<<20)
	if !b.AckDue || b.Received != 32 || len(b.Messages) != 0 {
		t.Errorf("Pull after 32 client messages = %+v, want AckDue, Received 32", b)
	}
}

// TestAcksInBandWaiting checks that a Pull already waiting is woken by the
// 32nd client message.
func TestAcksInBandWaiting(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{AcksInBand: true})
	got := make(chan session.Batch, 1)
	go func() {
		b, _ := l.Pull(testContext(t), longWait, 1<<20)
		got <- b
	}()
	for i := range 32 {
		if err := s.Deliver(testContext(t), uint64(i+1), texts("m")); err != nil {
			t.Fatalf("Deliver(%d) = %v", i+1, err)
		}
	}
	if b := <-got; !b.AckDue || b.Received < 32 {
		t.Errorf("waiting Pull after 32 client messages = %+v, want AckDue, Received >= 32", b)
	}
}

func TestAcksInBandIdle(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{AcksInBand: true})
	if err := s.Deliver(testContext(t), 1, texts("a", "b", "c")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	b, err := l.Pull(testContext(t), time.Millisecond, 1<<20)
	if err != nil || !b.AckDue || b.Received != 3 || len(b.Messages) != 0 {
		t.Errorf("idle Pull with 3 client messages unacknowledged = %+v, %v, want AckDue, Received 3", b, err)
	}
	b, err = l.Pull(testContext(t), time.Millisecond, 1<<20)
	if err != nil || !b.Empty() {
		t.Errorf("idle Pull with nothing unacknowledged = %+v, %v, want an empty batch", b, err)
	}
	// Messages going out do not carry an acknowledgement each (an echo
	// would pay one per reply); it follows once the burst pauses, or
	// rides with the messages going out once half of the 20 ms has passed
	// (TestAcksInBandRide), which a slow run may have let pass here.
	start := time.Now()
	if err := s.Deliver(testContext(t), 4, texts("d")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	sendAll(t, s, "x")
	b = pull(t, l, 1<<20)
	if join(strs(b.Messages)) != "x" {
		t.Fatalf("Pull with a message and 1 unacknowledged = %+v, want [x]", b)
	}
	if b.AckDue {
		if time.Since(start) < 10*time.Millisecond {
			t.Errorf("Pull with a message and 1 unacknowledged = %+v, want no AckDue within 10 ms", b)
		}
		return
	}
	b = pull(t, l, 1<<20)
	if !b.AckDue || b.Received != 4 || len(b.Messages) != 0 {
		t.Errorf("Pull after the burst = %+v, want AckDue Received 4", b)
	}
}

// TestAcksInBandRide checks that an acknowledgement waiting for the link's
// timer goes out with the next messages once half of its 20 ms has passed,
// and only once: the timer does not send it again alone.
func TestAcksInBandRide(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{AcksInBand: true})
	if err := s.Deliver(testContext(t), 1, texts("a")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	sendAll(t, s, "x")
	b, err := l.Collect(1 << 20)
	if err != nil || !b.AckDue || b.Received != 1 || join(strs(b.Messages)) != "x" {
		t.Fatalf("Collect 10 ms after a client message, with a message to send = %+v, %v, want [x] with AckDue, Received 1", b, err)
	}
	// Past the timer's 20 ms: nothing more to send, no acknowledgement alone.
	time.Sleep(30 * time.Millisecond)
	if b, err := l.Collect(1 << 20); err != nil || !b.Empty() {
		t.Errorf("Collect after the timer's time = %+v, %v, want an empty batch", b, err)
	}
}

// TestAcksNotInBand checks that a downstream-only link never carries
// acknowledgements: its transport acknowledges in the send answer.
func TestAcksNotInBand(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{})
	msgs := make([]wire.Message, 40)
	for i := range msgs {
		msgs[i] = text("m")
	}
	if err := s.Deliver(testContext(t), 1, msgs); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	b, err := l.Pull(testContext(t), time.Millisecond, 1<<20)
	if err != nil || !b.Empty() {
		t.Errorf("Pull on a link without AcksInBand = %+v, %v, want an empty batch", b, err)
	}
}

// TestAcksAfterReattach checks that a new bidirectional link acknowledges
// client messages the link before it accepted but never acknowledged: the
// client keeps those until it sees an acknowledgement.
func TestAcksAfterReattach(t *testing.T) {
	s := newSession(t, nil)
	old := attach(t, s, session.AttachOptions{AcksInBand: true})
	if err := s.Deliver(testContext(t), 1, texts("a", "b")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	old.Detach() // cut before the old link sent its acknowledgement
	l := attach(t, s, session.AttachOptions{AcksInBand: true})
	b, err := l.Pull(testContext(t), time.Millisecond, 1<<20)
	if err != nil || !b.AckDue || b.Received != 2 {
		t.Errorf("idle Pull on a new link after 2 unacknowledged client messages = %+v, %v, want AckDue, Received 2", b, err)
	}
}

// TestAcksInBandSoon checks that a bidirectional link acknowledges a
// client message alone, without waiting for the heartbeat interval to pass.
func TestAcksInBandSoon(t *testing.T) {
	s := newSession(t, nil)
	l := attach(t, s, session.AttachOptions{AcksInBand: true})
	got := make(chan session.Batch, 1)
	go func() {
		b, _ := l.Pull(testContext(t), longWait, 1<<20)
		got <- b
	}()
	if err := s.Deliver(testContext(t), 1, texts("a")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	if b := <-got; !b.AckDue || b.Received != 1 {
		t.Errorf("waiting Pull after 1 client message = %+v, want AckDue, Received 1", b)
	}
	if err := s.Deliver(testContext(t), 2, texts("b", "c")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	if b := pull(t, l, 1<<20); !b.AckDue || b.Received != 3 {
		t.Errorf("Pull after 2 more client messages = %+v, want AckDue, Received 3", b)
	}
}
