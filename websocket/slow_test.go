package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// slowBlock is a message of slowBlockBytes; slowSend sends them numbered.
const slowBlockBytes = 16 << 10

// slowSend sends messages of slowBlockBytes numbered from first until Send
// fails or max have gone, and returns how many Send took and its error.
func slowSend(ctx context.Context, s *session.Session, first, max int) (int, error) {
	data := make([]byte, slowBlockBytes)
	for i := range max {
		copy(data, fmt.Sprintf("%08d", first+i))
		if err := s.Send(ctx, wire.Message{Type: wire.Text, Data: data}); err != nil {
			return i, err
		}
	}
	return max, nil
}

// readMessages reads the messages a connection carries, skipping
// acknowledgements and heartbeats, checking that they are slowSend's
// numbered from first on, until a close frame (returned) or the end of
// the connection (nil). It returns how many messages came.
func readMessages(t *testing.T, c *ws.Conn, first int) (int, *wire.CloseError) {
	t.Helper()
	return readUpTo(t, c, first, -1)
}

// readUpTo is readMessages that returns after max messages when max is
// not negative.
func readUpTo(t *testing.T, c *ws.Conn, first, max int) (int, *wire.CloseError) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute)) // a bound, not a measurement
	n := 0
	for n != max {
		_, p, err := c.ReadMessage()
		if err != nil {
			return n, nil
		}
		f, err := wire.ParseFrame(p, 1<<20)
		if err != nil {
			t.Fatalf("after %d messages, a malformed frame: %v", n, err)
		}
		switch {
		case f.IsMessage():
			got, err := strconv.Atoi(string(f.Message.Data[:8]))
			if err != nil || got != first+n || len(f.Message.Data) != slowBlockBytes {
				t.Fatalf("message %d is %q... (%d bytes), want message %d", first+n, f.Message.Data[:8], len(f.Message.Data), first+n)
			}
			n++
		case f.Type == wire.FrameClose:
			return n, &f.Close
		}
	}
	return n, nil
}

// connEvents is a tether.Observer that reports when connections detach.
type connEvents struct {
	detached chan struct{}
}

func newConnEvents() *connEvents { return &connEvents{detached: make(chan struct{}, 16)} }

func (e *connEvents) ServerObserver([]string) tether.ServerObserver { return e }
func (e *connEvents) Negotiated(tether.NegotiateResult)             {}
func (e *connEvents) Opened()                                       {}
func (e *connEvents) Attached(string, string, uint64)               {}
func (e *connEvents) MessagesOut(string, int, int)                  {}
func (e *connEvents) MessagesIn(string, int, int)                   {}
func (e *connEvents) Dropped()                                      {}
func (e *connEvents) Finished(string, wire.StatusCode)              {}
func (e *connEvents) Detached(string) {
	select {
	case e.detached <- struct{}{}:
	default:
	}
}

// waitDetached waits until a connection of the session has detached.
func (e *connEvents) waitDetached(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-e.detached:
	case <-ctx.Done():
		t.Fatal("the connection never ended")
	}
}

// The tests below send more than the sockets of a connection hold (on
// Linux by default: the server's send buffer grows to 4 MiB, the receive
// buffer of a client that never reads stays at 128 KiB), so that the
// writer finds the socket full and waits (socket.send).

// TestNeverReadingClientSlowConsumer: under SlowConsumerClose, a client
// that never reads fills the server's socket; the writer waits (for as
// long as WriteTimeout allows, here an hour) while Send goes on queuing
// without waiting, until the queue passes MaxQueuedBytes and the session
// closes with 4002. Once the client reads, every message queued before
// that arrives, in order, then the close frame with 4002.
func TestNeverReadingClientSlowConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, attachURL := startSession(t, &tether.Options{
		Logger: slog.New(slog.DiscardHandler), MaxQueuedBytes: 8 << 20, WriteTimeout: time.Hour,
	})
	c := dial(t, ws.Dialer{}, attachURL, 0)
	// 64 MiB at the most: far beyond the queue.
	sent, err := slowSend(ctx, s, 0, 4096)
	if got := wire.CloseStatus(err); got != wire.StatusSlowConsumer {
		t.Fatalf("after %d messages Send = %v (status %d), want a close with %d", sent, err, got, wire.StatusSlowConsumer)
	}
	n, ce := readMessages(t, c, 0)
	if ce == nil || ce.Code != wire.StatusSlowConsumer {
		t.Fatalf("after %d of the %d messages sent, the close frame is %v, want %d", n, sent, ce, wire.StatusSlowConsumer)
	}
	if n == 0 || n > sent {
		t.Fatalf("%d messages arrived before the close frame, of %d sent", n, sent)
	}
}

// TestNeverReadingClientDrops: under SlowConsumerDrop, a client that
// never reads fills the socket, then the queue; Send then drops the
// message (ErrDropped) and the session goes on: the client reads every
// message queued before, in order, acknowledges them, and once the session
// has the acknowledgement the next Send is queued and delivered.
func TestNeverReadingClientDrops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, attachURL := startSession(t, &tether.Options{
		Logger: slog.New(slog.DiscardHandler), MaxQueuedBytes: 8 << 20, SlowConsumer: session.SlowConsumerDrop, WriteTimeout: time.Hour,
	})
	c := dial(t, ws.Dialer{}, attachURL, 0)
	sent, err := slowSend(ctx, s, 0, 4096)
	if !errors.Is(err, session.ErrDropped) {
		t.Fatalf("after %d messages Send = %v, want %v", sent, err, session.ErrDropped)
	}
	if n, ce := readUpTo(t, c, 0, sent); n != sent || ce != nil {
		t.Fatalf("the client read %d messages then close %v, want the %d queued", n, ce, sent)
	}
	if err := c.WriteMessage(ws.TextMessage, wire.AppendAck(nil, uint64(sent))); err != nil {
		t.Fatal(err)
	}
	// The server's reader hands the acknowledgement to the session.
	for _, acked := s.Sent(); acked != uint64(sent); _, acked = s.Sent() {
		select {
		case <-ctx.Done():
			t.Fatalf("the session never saw the acknowledgement of %d (has %d)", sent, acked)
		case <-time.After(time.Millisecond):
		}
	}
	if _, err := slowSend(ctx, s, sent, 1); err != nil {
		t.Fatalf("Send once the client has acknowledged everything = %v", err)
	}
	if n, ce := readUpTo(t, c, sent, 1); n != 1 || ce != nil {
		t.Fatalf("after the acknowledgement the client read %d messages then close %v, want message %d", n, ce, sent)
	}
}

// TestNeverReadingClientResumes: under SlowConsumerBlock, a client that
// never reads (nor sends) fills the socket and then the queue, so that
// Send waits; the reader gives the connection up after two heartbeat
// intervals of silence (the writer's wait, of up to WriteTimeout, ends
// with it). Send still waits: the session keeps its messages for the
// resume window. Closed meanwhile, the session delivers them all to the
// connection that resumes, in order, then its close frame.
func TestNeverReadingClientResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := newConnEvents()
	s, attachURL := startSession(t, &tether.Options{
		Logger: slog.New(slog.DiscardHandler), MaxQueuedBytes: 8 << 20, SlowConsumer: session.SlowConsumerBlock,
		WriteTimeout: time.Hour, HeartbeatInterval: 200 * time.Millisecond, ResumeWindow: time.Minute,
		Observer: events,
	})
	dial(t, ws.Dialer{}, attachURL, 0)
	type result struct {
		sent int
		err  error
	}
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	done := make(chan result, 1)
	go func() {
		n, err := slowSend(sendCtx, s, 0, 4096)
		done <- result{n, err}
	}()
	events.waitDetached(ctx, t)
	if err := s.Close(wire.StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if wire.CloseStatus(r.err) != wire.StatusNormalClosure {
		t.Fatalf("the waiting Send after %d messages returned %v, want the session's close", r.sent, r.err)
	}
	c := dial(t, ws.Dialer{}, attachURL, 0)
	n, ce := readMessages(t, c, 0)
	if n != r.sent || ce == nil || ce.Code != wire.StatusNormalClosure {
		t.Fatalf("the resumed connection carried %d messages then close %v; want the %d sent, then %d", n, ce, r.sent, wire.StatusNormalClosure)
	}
}

// TestAbortWhileWriteBlocked: Abort while the writer waits for a client
// that never reads makes Send fail at once; the connection ends when the
// blocked write reaches WriteTimeout (the socket cannot carry the close
// frame), and the connection that resumes gets the close frame with
// Abort's code, the undelivered messages discarded.
func TestAbortWhileWriteBlocked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := newConnEvents()
	s, attachURL := startSession(t, &tether.Options{
		Logger: slog.New(slog.DiscardHandler), MaxQueuedBytes: 256 << 20, WriteTimeout: 200 * time.Millisecond,
		HeartbeatInterval: time.Hour, ResumeWindow: time.Minute, Observer: events,
	})
	dial(t, ws.Dialer{}, attachURL, 0)
	// 16 MiB: beyond the socket's buffers, within the queue.
	if n, err := slowSend(ctx, s, 0, 1024); err != nil {
		t.Fatalf("Send after %d messages = %v", n, err)
	}
	ce := wire.CloseError{Code: wire.StatusApplicationMin, Reason: "aborted"}
	s.Abort(ce)
	if _, err := slowSend(ctx, s, 0, 1); wire.CloseStatus(err) != ce.Code {
		t.Fatalf("Send after Abort = %v, want %v", err, ce)
	}
	events.waitDetached(ctx, t)
	c := dial(t, ws.Dialer{}, attachURL, 0)
	if n, got := readMessages(t, c, 0); got == nil || *got != ce {
		t.Fatalf("the resumed connection carried %d messages then close %v, want none, then %v", n, got, ce)
	}
}
