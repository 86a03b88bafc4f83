package redisstate_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
)

// TestWriteKeepsExpiry checks when a write sets the expiry of the session's
// keys to the resume window again: when the last write that did (the state's
// field x) is more than a third of LeaseTTL ago, or is ahead of the writer's
// clock, or unknown; and not otherwise, so that a busy session's writes
// leave it as it is. The lease is extended by every write.
func TestWriteKeepsExpiry(t *testing.T) {
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	client := newClient(t, e.Addr)
	// A third of LeaseTTL is 20 s: no pause of the test's makes a write
	// due that should not be.
	const window = 10 * time.Minute
	s := newStore(t, client, &redisstate.Options{LeaseTTL: time.Minute, ResumeWindow: window})
	l, err := s.Create(ctx, id, token, "nodeA", nil)
	if err != nil {
		t.Fatal(err)
	}
	state, out, topics, lease := "tether:{"+id+"}:state", "tether:{"+id+"}:out", "tether:{"+id+"}:topics", "tether:{"+id+"}:lease"
	// The write that makes the out stream and the topics set gives them
	// their expiry, though the state's is not due.
	if err := s.Write(ctx, l, &session.Entry{First: 1, Messages: messages(1, 1), Subscribe: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{state, out, topics} {
		if ttl, err := client.PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > window {
			t.Fatalf("PTTL of %s after the first write = %v, %v; want in (0, %v]", key, ttl, err, window)
		}
	}
	now := time.Now().UnixMilli()
	const short = 5 * time.Second
	for _, c := range []struct {
		name string
		x    string // the state's field x before the write; "" for none
		kept bool   // whether the write sets the expiry again
	}{
		{"set by the last write", strconv.FormatInt(now, 10), false},
		{"a minute old", strconv.FormatInt(now-time.Minute.Milliseconds(), 10), true},
		{"ahead of the clock", strconv.FormatInt(now+time.Hour.Milliseconds(), 10), true},
		{"missing", "", true},
	} {
		if c.x == "" {
			err = client.HDel(ctx, state, "x").Err()
		} else {
			err = client.HSet(ctx, state, "x", c.x).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{state, out, topics, lease} {
			if err := client.PExpire(ctx, key, short).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Write(ctx, l, &session.Entry{Received: uint64(len(c.name))}); err != nil {
			t.Fatalf("%s: Write: %v", c.name, err)
		}
		if ttl, err := client.PTTL(ctx, lease).Result(); err != nil || ttl <= short {
			t.Errorf("%s: PTTL of the lease after a write = %v, %v; want LeaseTTL again", c.name, ttl, err)
		}
		for _, key := range []string{state, out, topics} {
			ttl, err := client.PTTL(ctx, key).Result()
			if err != nil || ttl <= 0 || ttl > window || (ttl > short) != c.kept {
				t.Errorf("%s: PTTL of %s after a write = %v, %v; want it set to the window again: %v", c.name, key, ttl, err, c.kept)
			}
		}
		if x, err := client.HGet(ctx, state, "x").Result(); c.kept && (err != nil || x == c.x) {
			t.Errorf("%s: x after the write that set the expiry = %q, %v; want the writer's clock", c.name, x, err)
		}
	}
}

// TestWriteManyTopics checks that a write with more topics, offsets and
// unsubscriptions than a script passes to one Redis command at a time stores
// them all (Lua's unpack takes some 8000 at most).
func TestWriteManyTopics(t *testing.T) {
	const n = 9000
	var subscribe, unsubscribe, want []string
	var offsets []session.TopicOffset
	for i := range n {
		topic := fmt.Sprintf("topic/%04d", i)
		subscribe = append(subscribe, topic)
		offsets = append(offsets, session.TopicOffset{Topic: topic, Offset: uint64(i + 1)})
		if i%2 == 0 {
			unsubscribe = append(unsubscribe, topic)
		} else {
			want = append(want, topic)
		}
	}
	st := handOver(t,
		&session.Entry{First: 1, Messages: messages(1, 1), Subscribe: subscribe, TopicOffsets: offsets},
		&session.Entry{Unsubscribe: unsubscribe},
	)
	if !slices.Equal(st.Topics, want) || len(st.TopicOffsets) != len(want) {
		t.Fatalf("TakeOver: %d topics, %d offsets; want %d of each", len(st.Topics), len(st.TopicOffsets), len(want))
	}
	for i, topic := range want {
		if got := st.TopicOffsets[topic]; got != uint64(2*i+2) {
			t.Fatalf("offset of %s = %d, want %d", topic, got, 2*i+2)
		}
	}
}
