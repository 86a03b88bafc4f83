package natsstate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/natsstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestNewOptions: options out of range, and a bucket made for another
// window, are refused with an error that says which.
func TestNewOptions(t *testing.T) {
	e := enginetest.NATSJetStreamT(t)
	nc := connect(t, e.URL())
	ctx := testContext(t)
	for _, c := range []struct {
		opts *natsstate.Options
		want string
	}{
		{&natsstate.Options{LeaseTTL: -time.Second}, "under 1 ms"},
		{&natsstate.Options{LeaseTTL: time.Minute, ResumeWindow: time.Second}, "shorter than LeaseTTL"},
		{&natsstate.Options{Bucket: "no spaces"}, "invalid bucket name \"no spaces\""},
	} {
		if _, err := natsstate.New(ctx, nc, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error saying %q", c.opts, err, c.want)
		}
	}
	if _, err := natsstate.New(ctx, nc, nil); err != nil {
		t.Fatalf("New(nil): %v", err)
	}
	if _, err := natsstate.New(ctx, nc, &natsstate.Options{}); err != nil {
		t.Fatalf("New with the bucket made already: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "KV_"+natsstate.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := stream.CachedInfo().Config; cfg.AllowDirect || cfg.MaxAge != session.DefaultResumeWindow || cfg.MaxMsgsPerSubject != 1 {
		t.Fatalf("the bucket's stream allows direct gets %v, keeps values %v, %d per key", cfg.AllowDirect, cfg.MaxAge, cfg.MaxMsgsPerSubject)
	}
	_, err = natsstate.New(ctx, nc, &natsstate.Options{ResumeWindow: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "not ResumeWindow 1h0m0s") {
		t.Fatalf("New on a bucket of another window = %v", err)
	}
}

// TestTooLarge: a Write that would make the state larger than the server's
// max_payload is refused as unavailable, and goes through once the
// client's acknowledgements made the state smaller, as the doc says.
func TestTooLarge(t *testing.T) {
	e := enginetest.NATSJetStreamT(t)
	nc := connect(t, e.URL())
	ctx := testContext(t)
	s, err := natsstate.New(ctx, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Create(ctx, "node.big", "token", "node", nil)
	if err != nil {
		t.Fatal(err)
	}
	chunk := wire.Message{Type: wire.Binary, Data: make([]byte, 64<<10)}
	var sent uint64
	for sent*uint64(len(chunk.Data)) < uint64(nc.MaxPayload()) {
		sent++
		if err := s.Write(ctx, l, &session.Entry{First: sent, Messages: []wire.Message{chunk}}); err != nil {
			if !errors.Is(err, cluster.ErrStateUnavailable) || !errors.Is(err, nats.ErrMaxPayload) {
				t.Fatalf("Write of message %d, %d bytes in all: %v", sent, sent*uint64(len(chunk.Data)), err)
			}
			if err := s.Write(ctx, l, &session.Entry{First: sent, Messages: []wire.Message{chunk}, Acked: sent - 1}); err != nil {
				t.Fatalf("Write with the previous messages acknowledged: %v", err)
			}
			_, st, err := s.TakeOver(ctx, "node.big", "token", "node")
			if err != nil || st.Sent != sent || st.Acked != sent-1 || len(st.Out) != 1 {
				t.Fatalf("TakeOver = %+v, %v", st, err)
			}
			return
		}
	}
	t.Fatalf("%d bytes of messages written, max_payload is %d", sent*uint64(len(chunk.Data)), nc.MaxPayload())
}

// TestUnavailable: with nats-server down, every call returns an error
// wrapping ErrStateUnavailable (and the context's) within its context;
// once the server is back, with what JetStream stored, writes go on.
func TestUnavailable(t *testing.T) {
	e := enginetest.NATSJetStreamT(t)
	ctx := testContext(t)
	s := newStore(t, e.URL(), nil)
	l, err := s.Create(ctx, "node.down", "token", "node", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, l, &session.Entry{First: 1, Messages: []wire.Message{{Type: wire.Text, Data: []byte("m1")}}}); err != nil {
		t.Fatal(err)
	}
	e.Kill()
	for name, call := range map[string]func(ctx context.Context) error{
		"Write": func(ctx context.Context) error {
			return s.Write(ctx, l, &session.Entry{First: 2, Messages: []wire.Message{{Type: wire.Text, Data: []byte("m2")}}})
		},
		"Renew": func(ctx context.Context) error { return s.Renew(ctx, l) },
		"TakeOver": func(ctx context.Context) error {
			_, _, err := s.TakeOver(ctx, "node.down", "token", "other")
			return err
		},
		"RenewAll": func(ctx context.Context) error { return s.RenewAll(ctx, []cluster.Lease{l})[0] },
	} {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := call(short)
		cancel()
		if !errors.Is(err, cluster.ErrStateUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with the server down = %v", name, err)
		}
	}
	if err := e.Restart(); err != nil {
		t.Fatal(err)
	}
	var werr error
	for range 100 {
		retry, cancel := context.WithTimeout(ctx, time.Second)
		werr = s.Write(retry, l, &session.Entry{First: 2, Messages: []wire.Message{{Type: wire.Text, Data: []byte("m2")}}})
		cancel()
		if !errors.Is(werr, cluster.ErrStateUnavailable) {
			break
		}
	}
	if werr != nil {
		t.Fatalf("Write once the server is back: %v", werr)
	}
	if _, st, err := s.TakeOver(ctx, "node.down", "token", "node"); err != nil || st.Sent != 2 || len(st.Out) != 2 {
		t.Fatalf("TakeOver after the restart = %+v, %v", st, err)
	}
}
