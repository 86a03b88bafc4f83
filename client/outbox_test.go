package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tetherkit/tether/wire"
)

func text(s string) wire.Message { return wire.Message{Type: wire.Text, Data: []byte(s)} }

func TestOutboxNumbersAndAcks(t *testing.T) {
	o := newOutbox(1 << 20)
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c", "d"} {
		if err := o.push(ctx, nil, text(s)); err != nil {
			t.Fatalf("push(%q) = %v", s, err)
		}
	}
	if got := o.next(); got != 1 {
		t.Fatalf("next() = %d, want 1", got)
	}
	w, err := o.view(2, 0)
	if err != nil || w.first != 2 || len(w.msgs) != 3 || string(w.msgs[0].Data) != "b" {
		t.Fatalf("view(2) = %+v, %v; want b, c, d from 2", w, err)
	}
	if err := o.ack(2); err != nil {
		t.Fatalf("ack(2) = %v", err)
	}
	if got := o.next(); got != 3 {
		t.Fatalf("next() after ack(2) = %d, want 3", got)
	}
	if err := o.ack(1); err != nil {
		t.Fatalf("ack(1) after ack(2) = %v, want nil (stale acks are ignored)", err)
	}
	if _, err := o.view(2, 0); err == nil {
		t.Fatal("view(2) after ack(2) succeeded, want an error: message 2 is gone")
	}
	if err := o.ack(5); err == nil {
		t.Fatal("ack(5) with 4 messages sent succeeded, want an error")
	}
	w, _ = o.view(5, 0)
	if len(w.msgs) != 0 {
		t.Fatalf("view(5) = %d messages, want 0", len(w.msgs))
	}
}

var viewBoundTests = []struct {
	maxBytes  int
	wantCount int
	wantRest  bool
}{
	{0, 3, false},  // no bound
	{1, 1, true},   // always at least one message
	{6, 1, true},   // "3:mabc" is 6 bytes
	{12, 2, true},  // two frames
	{17, 2, true},  // one byte short of three
	{18, 3, false}, // all three
}

func TestOutboxViewBound(t *testing.T) {
	o := newOutbox(1 << 20)
	for _, s := range []string{"abc", "def", "ghi"} {
		o.push(context.Background(), nil, text(s))
	}
	for _, tt := range viewBoundTests {
		w, err := o.view(1, tt.maxBytes)
		if err != nil || len(w.msgs) != tt.wantCount || w.rest != tt.wantRest {
			t.Errorf("view(1, %d) = %d messages, rest %v, %v; want %d, %v", tt.maxBytes, len(w.msgs), w.rest, err, tt.wantCount, tt.wantRest)
		}
	}
}

func TestOutboxPushBlocksAtLimit(t *testing.T) {
	o := newOutbox(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.push(ctx, nil, text("0123456789")); err != nil {
		t.Fatalf("push into an empty outbox = %v, want nil even over the limit", err)
	}
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if err := o.push(short, nil, text("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("push over the limit with a canceled context = %v, want context.Canceled", err)
	}
	pushed := make(chan error, 1)
	go func() { pushed <- o.push(ctx, nil, text("y")) }()
	if err := o.ack(1); err != nil {
		t.Fatal(err)
	}
	if err := <-pushed; err != nil {
		t.Fatalf("push after the ack = %v, want nil", err)
	}
	if w, _ := o.view(2, 0); len(w.msgs) != 1 || string(w.msgs[0].Data) != "y" {
		t.Fatalf("view(2) = %+v, want y", w.msgs)
	}

	stop := make(chan struct{})
	o.push(ctx, nil, text("zzz")) // 4 bytes queued: the limit
	go func() { pushed <- o.push(ctx, stop, text("w")) }()
	close(stop)
	if err := <-pushed; !errors.Is(err, errStopped) {
		t.Fatalf("push stopped by the session's end = %v, want errStopped", err)
	}
}

func TestOutboxClose(t *testing.T) {
	o := newOutbox(1 << 20)
	o.push(context.Background(), nil, text("a"))
	ce := wire.CloseError{Code: wire.StatusNormalClosure, Reason: "bye"}
	if !o.close(ce) {
		t.Fatal("first close() = false, want true")
	}
	if o.close(wire.CloseError{Code: 4100}) {
		t.Fatal("second close() = true, want false")
	}
	err := o.push(context.Background(), nil, text("b"))
	if got := wire.CloseStatus(err); got != wire.StatusNormalClosure {
		t.Fatalf("push after close = %v, want the CloseError", err)
	}
	w, _ := o.view(1, 0)
	if len(w.msgs) != 1 || w.closeReq == nil || *w.closeReq != ce {
		t.Fatalf("view after close = %d messages, close %v; want 1 and %v", len(w.msgs), w.closeReq, ce)
	}
	if !o.closing() {
		t.Fatal("closing() = false after close")
	}
}
