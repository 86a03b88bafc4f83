package redisstate_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestTakeOverRestore checks the whole way of a takeover: what one node
// wrote, another takes over and restores as a session that replays the
// unacknowledged messages with their numbers and drops the client's
// duplicates.
func TestTakeOverRestore(t *testing.T) {
	ctx := testContext(t)
	st := handOver(t, &session.Entry{First: 1, Messages: messages(1, 4), Acked: 2, Received: 2})
	local, err := session.Restore(nil, session.RequestInfo{}, st.Restored(token), nil)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	defer local.Abort(wire.CloseError{Code: wire.StatusGoingAway})
	if local.ID() != id || local.Token() != token {
		t.Fatalf("restored ID, Token = %q, %q", local.ID(), local.Token())
	}
	link, err := local.Attach(session.AttachOptions{Transport: "test", Received: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Detach()
	b, err := link.Pull(ctx, time.Minute, 1<<20)
	if err != nil || b.First != 3 || len(b.Messages) != 2 || string(b.Messages[0].Data) != "m3" || string(b.Messages[1].Data) != "m4" {
		t.Fatalf("Pull = %+v, %v; want 3 [m3 m4]", b, err)
	}
	if err := local.Deliver(ctx, 1, []wire.Message{text("dup1"), text("dup2"), text("new3")}); err != nil {
		t.Fatal(err)
	}
	if m, err := local.Recv(ctx); err != nil || string(m.Data) != "new3" {
		t.Fatalf("Recv = %q, %v; want new3", m.Data, err)
	}
}

// TestTopicOffsets: the topic offsets a session reached are stored with its
// messages, only ever raised, dropped when it leaves the topic, and
// returned by TakeOver.
func TestTopicOffsets(t *testing.T) {
	st := handOver(t,
		&session.Entry{First: 1, Messages: messages(1, 2), Subscribe: []string{"a", "b", "c"}, TopicOffsets: []session.TopicOffset{{Topic: "a", Offset: 10}, {Topic: "b", Offset: 4}}},
		&session.Entry{First: 1, Messages: messages(1, 2), TopicOffsets: []session.TopicOffset{{Topic: "a", Offset: 7}}}, // written again, lower: no change
		&session.Entry{First: 3, Messages: messages(3, 1), TopicOffsets: []session.TopicOffset{{Topic: "b", Offset: 9}}},
		&session.Entry{Unsubscribe: []string{"a"}, TopicOffsets: []session.TopicOffset{{Topic: "a", Offset: 12}}},
	)
	if len(st.TopicOffsets) != 1 || st.TopicOffsets["b"] != 9 || !slices.Equal(st.Topics, []string{"b", "c"}) {
		t.Fatalf("TakeOver: topics %v, offsets %v; want [b c], map[b:9]", st.Topics, st.TopicOffsets)
	}
}

// handOver creates the session on a redis-server of its own as nodeA,
// writes entries, releases it, and returns the state nodeB takes over.
func handOver(t *testing.T, entries ...*session.Entry) *cluster.State {
	t.Helper()
	e := enginetest.RedisT(t)
	ctx := testContext(t)
	s := newStore(t, newClient(t, e.Addr), nil)
	a, err := s.Create(ctx, id, token, "nodeA", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range entries {
		if err := s.Write(ctx, a, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Release(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, st, err := s.TakeOver(ctx, id, token, "nodeB")
	if err != nil {
		t.Fatal(err)
	}
	return st
}
