package redisstate_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
)

// TestExpiry checks that every key of a session expires with the resume
// window and the lease sooner, so that a dead owner's session can be taken
// over, then is gone once the client could no longer come back.
func TestExpiry(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, &redisstate.Options{LeaseTTL: 100 * time.Millisecond, ResumeWindow: 300 * time.Millisecond})
	l, err := s.Create(ctx, id, token, "nodeA", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, l, &session.Entry{First: 1, Messages: messages(1, 2), Subscribe: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	for part, most := range map[string]time.Duration{"state": 300 * time.Millisecond, "out": 300 * time.Millisecond, "topics": 300 * time.Millisecond, "lease": 100 * time.Millisecond} {
		ttl, err := client.PTTL(ctx, "tether:{"+id+"}:"+part).Result()
		if err != nil || ttl <= 0 || ttl > most {
			t.Errorf("PTTL of %s = %v, %v; want in (0, %v]", part, ttl, err, most)
		}
	}
	// The lease lapses first: then another node may take the session over.
	var b cluster.Lease
	for {
		b, _, err = s.TakeOver(ctx, id, token, "nodeB")
		if err == nil {
			break
		}
		if !errors.Is(err, cluster.ErrOwned) {
			t.Fatalf("TakeOver = %v, want ErrOwned until the lease lapses", err)
		}
		sleep(ctx, t, 10*time.Millisecond)
	}
	if err := s.Write(ctx, l, &session.Entry{Acked: 1}); !errors.Is(err, cluster.ErrFenced) {
		t.Fatalf("Write after the takeover = %v, want ErrFenced", err)
	}
	// Nobody renews: the state goes.
	for {
		_, _, err := s.Load(ctx, id)
		if errors.Is(err, cluster.ErrNoState) {
			break
		}
		if err != nil {
			t.Fatalf("Load = %v", err)
		}
		sleep(ctx, t, 20*time.Millisecond)
	}
	if n, err := client.Exists(ctx, "tether:{"+id+"}:state", "tether:{"+id+"}:out", "tether:{"+id+"}:topics", "tether:{"+id+"}:lease").Result(); n != 0 || err != nil {
		t.Fatalf("keys left after the resume window: %d, %v", n, err)
	}
	for name, err := range map[string]error{
		"Write": s.Write(ctx, b, &session.Entry{Acked: 1}),
		"Renew": s.Renew(ctx, b),
	} {
		if !errors.Is(err, cluster.ErrNoState) {
			t.Errorf("%s after expiry = %v, want ErrNotFound", name, err)
		}
	}
	if _, _, err := s.TakeOver(ctx, id, token, "nodeC"); !errors.Is(err, cluster.ErrNoState) {
		t.Errorf("TakeOver after expiry = %v, want ErrNotFound", err)
	}
}

func sleep(ctx context.Context, t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		t.Fatal("timed out waiting")
	}
}

// TestUnavailable checks that every call on a Redis that cannot be reached
// returns an error wrapping cluster.ErrStateUnavailable, and that a Redis that
// restarted empty answers ErrNotFound (the state is gone, never made up).
func TestUnavailable(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := redis.NewClient(&redis.Options{Addr: e.Addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	s := newStore(t, client, nil)
	l, err := s.Create(ctx, id, token, "nodeA", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.Stop()
	calls := map[string]func() error{
		"Create":   func() error { _, err := s.Create(ctx, "other", token, "nodeA", nil); return err },
		"Write":    func() error { return s.Write(ctx, l, &session.Entry{First: 1, Messages: messages(1, 1)}) },
		"Renew":    func() error { return s.Renew(ctx, l) },
		"RenewAll": func() error { return s.RenewAll(ctx, []cluster.Lease{l, l})[1] },
		"TakeOver": func() error {
			_, _, err := s.TakeOver(ctx, id, token, "nodeB")
			return err
		},
		"Load":  func() error { _, _, err := s.Load(ctx, id); return err },
		"Owner": func() error { _, err := s.Owner(ctx, id); return err },
	}
	for name, f := range calls {
		if err := f(); !errors.Is(err, cluster.ErrStateUnavailable) {
			t.Errorf("%s with Redis stopped = %v, want cluster.ErrStateUnavailable", name, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	<-short.Done()
	if err := s.Renew(short, l); !errors.Is(err, cluster.ErrStateUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Renew with an expired context = %v, want cluster.ErrStateUnavailable and DeadlineExceeded", err)
	}
	if err := e.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeOver(ctx, id, token, "nodeB"); !errors.Is(err, cluster.ErrNoState) {
		t.Errorf("TakeOver after Redis restarted empty = %v, want ErrNotFound", err)
	}

	// A Redis that never was: nothing listens on the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	nowhere := newStore(t, newClient(t, addr), nil)
	if _, _, err := nowhere.TakeOver(ctx, id, token, "nodeB"); !errors.Is(err, cluster.ErrStateUnavailable) {
		t.Errorf("TakeOver with no Redis = %v, want cluster.ErrStateUnavailable", err)
	}
}

// TestCorrupt checks that state damaged by hand, or written by another
// format version, gives ErrCorrupt or ErrVersion from every call that reads
// it, and never a panic.
func TestCorrupt(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, nil)
	key := func(part string) string { return "tether:{" + id + "}:" + part }
	cases := []struct {
		name   string
		damage func() error
		want   error
	}{
		{"other version", func() error { return client.HSet(ctx, key("state"), "v", "2").Err() }, cluster.ErrStateVersion},
		{"sent not a number", func() error { return client.HSet(ctx, key("state"), "sent", "x").Err() }, cluster.ErrStateCorrupt},
		{"acked beyond sent", func() error { return client.HSet(ctx, key("state"), "acked", "9").Err() }, cluster.ErrStateCorrupt},
		{"no token", func() error { return client.HDel(ctx, key("state"), "token").Err() }, cluster.ErrStateCorrupt},
		{"no epoch", func() error { return client.HDel(ctx, key("state"), "epoch").Err() }, cluster.ErrStateCorrupt},
		{"message lost", func() error { return client.XDel(ctx, key("out"), "2-0").Err() }, cluster.ErrStateCorrupt},
		{"message of another type", func() error {
			return client.XAdd(ctx, &redis.XAddArgs{Stream: key("out"), ID: "4-0", Values: []any{"t", "9", "d", "x"}}).Err()
		}, cluster.ErrStateCorrupt},
		{"message with other fields", func() error {
			return client.XAdd(ctx, &redis.XAddArgs{Stream: key("out"), ID: "4-0", Values: []any{"data", "x"}}).Err()
		}, cluster.ErrStateCorrupt},
		{"state of the wrong type", func() error {
			return client.Set(ctx, key("state"), "x", 0).Err()
		}, cluster.ErrStateCorrupt},
		{"out of the wrong type", func() error {
			return client.Set(ctx, key("out"), "x", 0).Err()
		}, cluster.ErrStateCorrupt},
		{"topics of the wrong type", func() error {
			return client.Set(ctx, key("topics"), "x", 0).Err()
		}, cluster.ErrStateCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := client.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			l, err := s.Create(ctx, id, token, "nodeA", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, l, &session.Entry{First: 1, Messages: messages(1, 3), Subscribe: []string{"t"}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Release(ctx, l); err != nil {
				t.Fatal(err)
			}
			if err := c.damage(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Load(ctx, id); !errors.Is(err, c.want) {
				t.Errorf("Load = %v, want %v", err, c.want)
			}
			if _, _, err := s.TakeOver(ctx, id, token, "nodeB"); !errors.Is(err, c.want) {
				t.Errorf("TakeOver = %v, want %v", err, c.want)
			}
		})
	}
	t.Run("lease", func(t *testing.T) {
		if err := client.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, id, token, "nodeA", nil); err != nil {
			t.Fatal(err)
		}
		if err := client.Set(ctx, key("lease"), "garbage", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Owner(ctx, id); !errors.Is(err, cluster.ErrStateCorrupt) {
			t.Errorf("Owner = %v, want ErrCorrupt", err)
		}
		if _, _, err := s.TakeOver(ctx, id, token, "nodeB"); !errors.Is(err, cluster.ErrStateCorrupt) {
			t.Errorf("TakeOver = %v, want ErrCorrupt", err)
		}
	})
}

// TestInvalid checks the answers to ids and options out of range.
func TestInvalid(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	s := newStore(t, client, nil)
	for _, bad := range []string{"", "a{b}", "a b", "é", string(make([]byte, redisstate.MaxIDBytes+1))} {
		if _, err := s.Create(ctx, bad, token, "nodeA", nil); !errors.Is(err, cluster.ErrInvalidSessionID) {
			t.Errorf("Create(%q) = %v, want ErrInvalidID", bad, err)
		}
		if _, _, err := s.TakeOver(ctx, bad, token, "nodeA"); !errors.Is(err, cluster.ErrInvalidSessionID) {
			t.Errorf("TakeOver(%q) = %v, want ErrInvalidID", bad, err)
		}
	}
	for _, o := range []redisstate.Options{
		{Prefix: "a{b"},
		{LeaseTTL: -time.Second},
		{LeaseTTL: time.Minute, ResumeWindow: time.Second},
	} {
		if _, err := redisstate.New(client, &o); err == nil {
			t.Errorf("New(%+v) = nil error", o)
		}
	}
}
