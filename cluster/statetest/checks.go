package statetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// createThenTakeOver: Create stores a session owned by its node with epoch
// 1, counters at 0, nothing else but the info; another node cannot take it
// over while the lease is current, and takes it over with epoch 2 once it
// is released.
func (s *suite) createThenTakeOver(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 2)
	for _, info := range [][]byte{[]byte("info\x00\xff with any bytes"), nil} {
		ss, l := create(t, ctx, n[0], info)
		_, _, err := n[1].TakeOver(ctx, ss.id, ss.token, n[1].id)
		wantOwned(t, "TakeOver of a session just created", err, n[0].id)
		if err := n[0].Release(ctx, l); err != nil {
			t.Fatalf("Release: %v", err)
		}
		l2, st := takeOver(t, ctx, n[1], ss)
		if l2.Epoch != 2 {
			t.Fatalf("TakeOver after Create gave epoch %d, want 2", l2.Epoch)
		}
		wantState(t, st, 0, 0, 0, nil, nil, nil)
		if string(st.Info) != string(info) {
			t.Fatalf("Info = %q, want %q", st.Info, info)
		}
	}
}

// createExists: a second Create of a session, by any node, with any token,
// gives ErrStateExists and changes nothing.
func (s *suite) createExists(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 2)
	ss, l := create(t, ctx, n[0], []byte("first"))
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 1)})
	for _, nd := range n {
		_, err := nd.Create(ctx, ss.id, "another-token", nd.id, []byte("second"))
		wantErr(t, "Create of an existing session by "+nd.id, err, cluster.ErrStateExists)
	}
	_, _, err := n[1].TakeOver(ctx, ss.id, "another-token", n[1].id)
	wantErr(t, "TakeOver with the token of the refused Create", err, cluster.ErrBadToken)
	st := load(t, ctx, n[0], ss, l)
	wantState(t, st, 1, 0, 0, text("m", 1, 1), nil, nil)
	if string(st.Info) != "first" {
		t.Fatalf("Info = %q after a refused Create, want %q", st.Info, "first")
	}
}

// invalidSessionID: ids no node makes (empty, with a space or a control
// character) give ErrInvalidSessionID on every call.
func (s *suite) invalidSessionID(t *testing.T) {
	ctx := testContext(t)
	nd := s.long(t, 1)[0]
	for _, id := range []string{"", "with space", "line\nbreak"} {
		_, err := nd.Create(ctx, id, "token", nd.id, nil)
		wantErr(t, fmt.Sprintf("Create(%q)", id), err, cluster.ErrInvalidSessionID)
		_, _, err = nd.TakeOver(ctx, id, "token", nd.id)
		wantErr(t, fmt.Sprintf("TakeOver(%q)", id), err, cluster.ErrInvalidSessionID)
		l := cluster.Lease{ID: id, Node: nd.id, Epoch: 1}
		wantErr(t, fmt.Sprintf("Write(%q)", id), nd.Write(ctx, l, &session.Entry{Received: 1}), cluster.ErrInvalidSessionID)
		wantErr(t, fmt.Sprintf("Renew(%q)", id), nd.Renew(ctx, l), cluster.ErrInvalidSessionID)
		wantErr(t, fmt.Sprintf("Release(%q)", id), nd.Release(ctx, l), cluster.ErrInvalidSessionID)
		wantErr(t, fmt.Sprintf("Delete(%q)", id), nd.Delete(ctx, l), cluster.ErrInvalidSessionID)
		errs := nd.RenewAll(ctx, []cluster.Lease{l})
		if len(errs) != 1 {
			t.Fatalf("RenewAll of 1 lease returned %d errors", len(errs))
		}
		wantErr(t, fmt.Sprintf("RenewAll(%q)", id), errs[0], cluster.ErrInvalidSessionID)
	}
}

// takeOverErrors: TakeOver of a session the store does not hold gives
// ErrNoState; a wrong token gives ErrBadToken, never ErrOwned (which would
// tell who holds the session) and changes nothing.
func (s *suite) takeOverErrors(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 3)
	_, _, err := n[1].TakeOver(ctx, newID(), "token", n[1].id)
	wantErr(t, "TakeOver of an unknown session", err, cluster.ErrNoState)
	ss, l := create(t, ctx, n[0], nil)
	for _, token := range []string{"wrong", "", ss.token + "x"} {
		_, _, err := n[1].TakeOver(ctx, ss.id, token, n[1].id)
		wantErr(t, fmt.Sprintf("TakeOver of an owned session with token %q", token), err, cluster.ErrBadToken)
	}
	if err := n[0].Release(ctx, l); err != nil {
		t.Fatalf("Release: %v", err)
	}
	for _, nd := range n[1:] {
		_, _, err := nd.TakeOver(ctx, ss.id, "wrong", nd.id)
		wantErr(t, "TakeOver of a released session with a wrong token", err, cluster.ErrBadToken)
	}
	// The wrong tokens changed nothing: the next owner is the second.
	if l2, _ := takeOver(t, ctx, n[2], ss); l2.Epoch != 2 {
		t.Fatalf("TakeOver after wrong tokens gave epoch %d, want 2", l2.Epoch)
	}
}

// takeOverRetried: TakeOver by the node that holds the current lease
// returns that lease and the state, changing nothing; another node still
// finds the session owned, by the holder.
func (s *suite) takeOverRetried(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 3)
	ss, l := create(t, ctx, n[0], nil)
	load(t, ctx, n[0], ss, l) // the creator holds epoch 1
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 2)})
	if err := n[0].Release(ctx, l); err != nil {
		t.Fatalf("Release: %v", err)
	}
	l2, st := takeOver(t, ctx, n[1], ss)
	for range 2 {
		if st2 := load(t, ctx, n[1], ss, l2); st2.Sent != st.Sent || !equalMessages(st2.Out, st.Out) {
			t.Fatalf("a retried TakeOver returned sent %d, out %s; the first %d, %s", st2.Sent, showMessages(st2.Out), st.Sent, showMessages(st.Out))
		}
	}
	for _, nd := range []node{n[0], n[2]} {
		_, _, err := nd.TakeOver(ctx, ss.id, ss.token, nd.id)
		wantOwned(t, "TakeOver by "+nd.id+" of a session another holds", err, n[1].id)
	}
	write(t, ctx, n[1], l2, &session.Entry{First: 3, Messages: text("m", 3, 3)})
	wantErr(t, "Write with the first owner's lease", n[0].Write(ctx, l, &session.Entry{First: 4, Messages: text("m", 4, 4)}), cluster.ErrFenced)
	wantState(t, load(t, ctx, n[1], ss, l2), 3, 0, 0, text("m", 1, 3), nil, nil)
}

// writeMessages: what Writes store is what TakeOver returns: the
// counters, and the messages not acknowledged, of either type and with any
// bytes.
func (s *suite) writeMessages(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 1)
	ss, l := create(t, ctx, n[0], nil)
	first := []wire.Message{
		{Type: wire.Text, Data: []byte("héllo")},
		{Type: wire.Binary, Data: []byte{0, 1, 0xff, '\n', 0}},
		{Type: wire.Binary, Data: nil},
		{Type: wire.Text, Data: []byte{}},
	}
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: first, Received: 2})
	wantState(t, load(t, ctx, n[0], ss, l), 4, 0, 2, first, nil, nil)
	write(t, ctx, n[0], l, &session.Entry{First: 5, Messages: text("m", 5, 6), Acked: 2})
	wantState(t, load(t, ctx, n[0], ss, l), 6, 2, 2, append(first[2:], text("m", 5, 6)...), nil, nil)
	// Acked and Received at 0 leave the counters as they are.
	write(t, ctx, n[0], l, &session.Entry{First: 7, Messages: text("m", 7, 7)})
	wantState(t, load(t, ctx, n[0], ss, l), 7, 2, 2, append(first[2:], text("m", 5, 7)...), nil, nil)
	// A batch may acknowledge its own messages.
	write(t, ctx, n[0], l, &session.Entry{First: 8, Messages: text("m", 8, 9), Acked: 9, Received: 5})
	wantState(t, load(t, ctx, n[0], ss, l), 9, 9, 5, nil, nil, nil)
	big := wire.Message{Type: wire.Binary, Data: make([]byte, 64<<10)}
	for i := range big.Data {
		big.Data[i] = byte(i * 7)
	}
	write(t, ctx, n[0], l, &session.Entry{First: 10, Messages: []wire.Message{big}})
	wantState(t, load(t, ctx, n[0], ss, l), 10, 9, 5, []wire.Message{big}, nil, nil)
}

// writeSkipsStored: messages numbered at or below the stored count are
// skipped, so an Entry written again changes nothing, and a batch that
// overlaps the stored messages adds only the new ones.
func (s *suite) writeSkipsStored(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 1)
	ss, l := create(t, ctx, n[0], nil)
	e := &session.Entry{First: 1, Messages: text("m", 1, 3), Received: 1}
	write(t, ctx, n[0], l, e)
	write(t, ctx, n[0], l, e)
	wantState(t, load(t, ctx, n[0], ss, l), 3, 0, 1, text("m", 1, 3), nil, nil)
	write(t, ctx, n[0], l, &session.Entry{First: 2, Messages: text("other", 2, 5)})
	wantState(t, load(t, ctx, n[0], ss, l), 5, 0, 1, append(text("m", 1, 3), text("other", 4, 5)...), nil, nil)
	e = &session.Entry{First: 6, Messages: text("m", 6, 6), Acked: 6}
	write(t, ctx, n[0], l, e)
	write(t, ctx, n[0], l, e)
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("again", 1, 6)})
	wantState(t, load(t, ctx, n[0], ss, l), 6, 6, 1, nil, nil, nil)
}

// writeOutOfOrder: a batch whose first message leaves a gap, or that
// acknowledges messages never sent, gives ErrOutOfOrder and writes
// nothing, none of its other changes either.
func (s *suite) writeOutOfOrder(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 1)
	ss, l := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 3), Received: 1, Subscribe: []string{"a"},
		TopicOffsets: []session.TopicOffset{{Topic: "a", Offset: 4}}})
	for _, e := range []*session.Entry{
		{First: 5, Messages: text("m", 5, 5)},
		{Acked: 4},
		{First: 4, Messages: text("m", 4, 4), Acked: 5},
		{First: 5, Messages: text("m", 5, 6), Acked: 1, Received: 9, Subscribe: []string{"b"}, Unsubscribe: []string{"a"},
			TopicOffsets: []session.TopicOffset{{Topic: "a", Offset: 9}, {Topic: "b", Offset: 9}}},
		{First: 4, Messages: text("m", 4, 4), Acked: 5, Received: 9, TopicOffsets: []session.TopicOffset{{Topic: "a", Offset: 9}}},
	} {
		wantErr(t, fmt.Sprintf("Write(%+v) after 3 messages", e), n[0].Write(ctx, l, e), cluster.ErrOutOfOrder)
	}
	wantState(t, load(t, ctx, n[0], ss, l), 3, 0, 1, text("m", 1, 3), []string{"a"}, map[string]uint64{"a": 4})
}

// writeInvalidBatch: messages with no number, or of a type neither Text nor
// Binary, give ErrInvalidBatch and write nothing.
func (s *suite) writeInvalidBatch(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 1)
	ss, l := create(t, ctx, n[0], nil)
	for _, e := range []*session.Entry{
		{First: 0, Messages: text("m", 1, 1)},
		{First: 1, Messages: []wire.Message{{Type: 0, Data: []byte("x")}}},
		{First: 1, Messages: append(text("m", 1, 1), wire.Message{Type: 3, Data: []byte("x")}), Received: 4},
	} {
		wantErr(t, fmt.Sprintf("Write(%+v)", e), n[0].Write(ctx, l, e), cluster.ErrInvalidBatch)
	}
	wantState(t, load(t, ctx, n[0], ss, l), 0, 0, 0, nil, nil, nil)
}

// topics: the stored topics follow Subscribe and Unsubscribe, sorted, with
// any name.
func (s *suite) topics(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 1)
	ss, l := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l, &session.Entry{Subscribe: []string{"news.sport", "chat room", "b", "ünï", "a"}})
	wantState(t, load(t, ctx, n[0], ss, l), 0, 0, 0, nil, []string{"a", "b", "chat room", "news.sport", "ünï"}, nil)
	write(t, ctx, n[0], l, &session.Entry{Subscribe: []string{"a"}, Unsubscribe: []string{"b", "never"}})
	write(t, ctx, n[0], l, &session.Entry{Unsubscribe: []string{"chat room"}})
	wantState(t, load(t, ctx, n[0], ss, l), 0, 0, 0, nil, []string{"a", "news.sport", "ünï"}, nil)
	write(t, ctx, n[0], l, &session.Entry{Unsubscribe: []string{"a", "news.sport", "ünï"}})
	wantState(t, load(t, ctx, n[0], ss, l), 0, 0, 0, nil, nil, nil)
}

// topicOffsets: a topic's offset is stored only where it is higher than the
// stored one, and dropped with the topic's Unsubscribe; none gives nil.
func (s *suite) topicOffsets(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 1)
	ss, l := create(t, ctx, n[0], nil)
	offsets := func(pairs ...any) []session.TopicOffset {
		var o []session.TopicOffset
		for i := 0; i < len(pairs); i += 2 {
			o = append(o, session.TopicOffset{Topic: pairs[i].(string), Offset: uint64(pairs[i+1].(int))})
		}
		return o
	}
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 2), Subscribe: []string{"a", "b"}, TopicOffsets: offsets("a", 5, "b", 7)})
	wantState(t, load(t, ctx, n[0], ss, l), 2, 0, 0, text("m", 1, 2), []string{"a", "b"}, map[string]uint64{"a": 5, "b": 7})
	write(t, ctx, n[0], l, &session.Entry{TopicOffsets: offsets("a", 3, "b", 9)})
	wantState(t, load(t, ctx, n[0], ss, l), 2, 0, 0, text("m", 1, 2), []string{"a", "b"}, map[string]uint64{"a": 5, "b": 9})
	write(t, ctx, n[0], l, &session.Entry{Unsubscribe: []string{"a"}})
	wantState(t, load(t, ctx, n[0], ss, l), 2, 0, 0, text("m", 1, 2), []string{"b"}, map[string]uint64{"b": 9})
	// Subscribed again, the topic starts from its new offset, lower or not.
	write(t, ctx, n[0], l, &session.Entry{First: 3, Messages: text("m", 3, 3), Subscribe: []string{"a"}, TopicOffsets: offsets("a", 2)})
	wantState(t, load(t, ctx, n[0], ss, l), 3, 0, 0, text("m", 1, 3), []string{"a", "b"}, map[string]uint64{"a": 2, "b": 9})
	write(t, ctx, n[0], l, &session.Entry{Unsubscribe: []string{"a", "b"}})
	wantState(t, load(t, ctx, n[0], ss, l), 3, 0, 0, text("m", 1, 3), nil, nil)
}

// topicInfo: a topic joined with presence info (Entry.SubscribeInfo) is
// stored with it, any bytes; joined again, it takes the new info, or none;
// left, it loses it. A SubscribeInfo that does not match Subscribe is
// ErrInvalidBatch, and changes nothing.
func (s *suite) topicInfo(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 2)
	ss, l := create(t, ctx, n[0], nil)
	wantInfo := func(st *cluster.State, want map[string][]byte) {
		t.Helper()
		if len(st.TopicInfo) != len(want) {
			t.Fatalf("TopicInfo = %q, want %q", st.TopicInfo, want)
		}
		for topic, info := range want {
			if got, ok := st.TopicInfo[topic]; !ok || string(got) != string(info) {
				t.Fatalf("TopicInfo = %q, want %q", st.TopicInfo, want)
			}
		}
	}
	write(t, ctx, n[0], l, &session.Entry{Subscribe: []string{"a", "b", "c"}, SubscribeInfo: [][]byte{[]byte("alice"), nil, []byte("\x00\xff bytes")}})
	st := load(t, ctx, n[0], ss, l)
	wantState(t, st, 0, 0, 0, nil, []string{"a", "b", "c"}, nil)
	wantInfo(st, map[string][]byte{"a": []byte("alice"), "c": []byte("\x00\xff bytes")})
	// Topics joined without info, in an Entry with none, store none.
	write(t, ctx, n[0], l, &session.Entry{Subscribe: []string{"d"}})
	wantInfo(load(t, ctx, n[0], ss, l), map[string][]byte{"a": []byte("alice"), "c": []byte("\x00\xff bytes")})
	wantErr(t, "Write with 1 info for 2 topics", n[0].Write(ctx, l, &session.Entry{Subscribe: []string{"e", "f"}, SubscribeInfo: [][]byte{[]byte("x")}}),
		cluster.ErrInvalidBatch)
	write(t, ctx, n[0], l, &session.Entry{Unsubscribe: []string{"a"}})
	write(t, ctx, n[0], l, &session.Entry{Subscribe: []string{"a", "b", "c"}, SubscribeInfo: [][]byte{[]byte("bob"), []byte("carol"), nil}})
	if err := n[0].Release(ctx, l); err != nil {
		t.Fatalf("Release: %v", err)
	}
	_, st = takeOver(t, ctx, n[1], ss)
	wantState(t, st, 0, 0, 0, nil, []string{"a", "b", "c", "d"}, nil)
	wantInfo(st, map[string][]byte{"a": []byte("bob"), "b": []byte("carol")})
}

// fenced: once another node took the session over, every call with the
// previous lease gives ErrFenced and changes nothing; so does a lease two
// owners old.
func (s *suite) fenced(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 3)
	ss, l1 := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l1, &session.Entry{First: 1, Messages: text("m", 1, 2), Subscribe: []string{"a"}})
	if err := n[0].Release(ctx, l1); err != nil {
		t.Fatalf("Release: %v", err)
	}
	l2, _ := takeOver(t, ctx, n[1], ss)
	if l2.Epoch != 2 {
		t.Fatalf("epoch %d after one takeover, want 2", l2.Epoch)
	}
	stale := func(l cluster.Lease) {
		t.Helper()
		nd := n[0]
		if l.Node == n[1].id {
			nd = n[1]
		}
		wantErr(t, "Write with a stale lease", nd.Write(ctx, l, &session.Entry{First: 3, Messages: text("stale", 3, 3), Acked: 3, Received: 7,
			Subscribe: []string{"z"}, Unsubscribe: []string{"a"}, TopicOffsets: []session.TopicOffset{{Topic: "z", Offset: 1}}}), cluster.ErrFenced)
		wantErr(t, "Renew with a stale lease", nd.Renew(ctx, l), cluster.ErrFenced)
		wantErr(t, "Release with a stale lease", nd.Release(ctx, l), cluster.ErrFenced)
		wantErr(t, "Delete with a stale lease", nd.Delete(ctx, l), cluster.ErrFenced)
		if errs := nd.RenewAll(ctx, []cluster.Lease{l}); len(errs) != 1 || !errors.Is(errs[0], cluster.ErrFenced) {
			t.Fatalf("RenewAll with a stale lease = %v, want [%v]", errs, cluster.ErrFenced)
		}
	}
	stale(l1)
	// The stale Release and Delete changed nothing: the owner still holds it.
	_, _, err := n[2].TakeOver(ctx, ss.id, ss.token, n[2].id)
	wantOwned(t, "TakeOver after stale calls", err, n[1].id)
	wantState(t, load(t, ctx, n[1], ss, l2), 2, 0, 0, text("m", 1, 2), []string{"a"}, nil)
	write(t, ctx, n[1], l2, &session.Entry{First: 3, Messages: text("m", 3, 3)})
	if err := n[1].Release(ctx, l2); err != nil {
		t.Fatalf("Release: %v", err)
	}
	l3, _ := takeOver(t, ctx, n[2], ss)
	if l3.Epoch != 3 {
		t.Fatalf("epoch %d after two takeovers, want 3", l3.Epoch)
	}
	stale(l1)
	stale(l2)
	wantState(t, load(t, ctx, n[2], ss, l3), 3, 0, 0, text("m", 1, 3), []string{"a"}, nil)
}

// release: after Release another node takes the session over at once,
// however long the lease; the state stays.
func (s *suite) release(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 2)
	ss, l := create(t, ctx, n[0], []byte("info"))
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 1), Received: 3})
	_, _, err := n[1].TakeOver(ctx, ss.id, ss.token, n[1].id)
	wantOwned(t, "TakeOver before Release", err, n[0].id)
	if err := n[0].Release(ctx, l); err != nil {
		t.Fatalf("Release: %v", err)
	}
	l2, st := takeOver(t, ctx, n[1], ss)
	if l2.Epoch != 2 || string(st.Info) != "info" {
		t.Fatalf("TakeOver after Release: epoch %d, info %q", l2.Epoch, st.Info)
	}
	wantState(t, st, 1, 0, 3, text("m", 1, 1), nil, nil)
	wantErr(t, "Release of an unknown session", n[0].Release(ctx, cluster.Lease{ID: newID(), Node: n[0].id, Epoch: 1}), cluster.ErrNoState)
}

// releaseFences: a Release ends the lease for good: a Write, Renew,
// RenewAll, Release or Delete with it afterwards (one that was in flight,
// say) gives ErrFenced and changes nothing, and another node still takes
// the session over at once, with epoch 2.
func (s *suite) releaseFences(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 2)
	ss, l := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 1), Received: 3, Subscribe: []string{"a"}})
	if err := n[0].Release(ctx, l); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wantErr(t, "Write after Release", n[0].Write(ctx, l, &session.Entry{First: 2, Messages: text("late", 2, 2), Acked: 1, Received: 9,
		Subscribe: []string{"z"}, Unsubscribe: []string{"a"}, TopicOffsets: []session.TopicOffset{{Topic: "z", Offset: 1}}}), cluster.ErrFenced)
	wantErr(t, "Renew after Release", n[0].Renew(ctx, l), cluster.ErrFenced)
	if errs := n[0].RenewAll(ctx, []cluster.Lease{l}); len(errs) != 1 || !errors.Is(errs[0], cluster.ErrFenced) {
		t.Fatalf("RenewAll after Release = %v, want [%v]", errs, cluster.ErrFenced)
	}
	wantErr(t, "Release after Release", n[0].Release(ctx, l), cluster.ErrFenced)
	wantErr(t, "Delete after Release", n[0].Delete(ctx, l), cluster.ErrFenced)
	l2, st := takeOver(t, ctx, n[1], ss)
	if l2.Epoch != 2 {
		t.Fatalf("TakeOver after Release and late calls gave epoch %d, want 2", l2.Epoch)
	}
	wantState(t, st, 1, 0, 3, text("m", 1, 1), []string{"a"}, nil)
	// The new owner's lease is an ordinary one: its calls go through.
	write(t, ctx, n[1], l2, &session.Entry{First: 2, Messages: text("m", 2, 2), Received: 4})
	wantState(t, load(t, ctx, n[1], ss, l2), 2, 0, 4, text("m", 1, 2), []string{"a"}, nil)
}

// delete: Delete removes the state: every later call gives ErrNoState,
// and the id may be created again, from scratch. A stale lease deletes
// nothing.
func (s *suite) delete(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 2)
	ss, l := create(t, ctx, n[0], nil)
	write(t, ctx, n[0], l, &session.Entry{First: 1, Messages: text("m", 1, 2), Subscribe: []string{"a"}})
	if err := n[0].Delete(ctx, l); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err := n[1].TakeOver(ctx, ss.id, ss.token, n[1].id)
	wantErr(t, "TakeOver after Delete", err, cluster.ErrNoState)
	_, _, err = n[0].TakeOver(ctx, ss.id, ss.token, n[0].id)
	wantErr(t, "TakeOver by the deleter", err, cluster.ErrNoState)
	wantErr(t, "Write after Delete", n[0].Write(ctx, l, &session.Entry{First: 3, Messages: text("m", 3, 3)}), cluster.ErrNoState)
	wantErr(t, "Renew after Delete", n[0].Renew(ctx, l), cluster.ErrNoState)
	wantErr(t, "Release after Delete", n[0].Release(ctx, l), cluster.ErrNoState)
	wantErr(t, "Delete after Delete", n[0].Delete(ctx, l), cluster.ErrNoState)

	l2, err := n[1].Create(ctx, ss.id, ss.token, n[1].id, nil)
	if err != nil || l2.Epoch != 1 || l2.Node != n[1].id {
		t.Fatalf("Create after Delete = %+v, %v", l2, err)
	}
	wantState(t, load(t, ctx, n[1], ss, l2), 0, 0, 0, nil, nil, nil)

	// A stale Delete deletes nothing.
	if err := n[1].Release(ctx, l2); err != nil {
		t.Fatalf("Release: %v", err)
	}
	l3, _ := takeOver(t, ctx, n[0], ss)
	wantErr(t, "Delete with a stale lease", n[1].Delete(ctx, l2), cluster.ErrFenced)
	load(t, ctx, n[0], ss, l3)
}

// renewAll: RenewAll returns one error per lease, in order, nil for those
// renewed.
func (s *suite) renewAll(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 2)
	if errs := n[0].RenewAll(ctx, nil); len(errs) != 0 {
		t.Fatalf("RenewAll(nil) = %v", errs)
	}
	_, current := create(t, ctx, n[0], nil)
	taken, fenced := create(t, ctx, n[0], nil)
	if err := n[0].Release(ctx, fenced); err != nil {
		t.Fatalf("Release: %v", err)
	}
	takeOver(t, ctx, n[1], taken)
	_, deleted := create(t, ctx, n[0], nil)
	if err := n[0].Delete(ctx, deleted); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, other := create(t, ctx, n[0], nil)
	invalid := cluster.Lease{ID: "", Node: n[0].id, Epoch: 1}
	errs := n[0].RenewAll(ctx, []cluster.Lease{current, fenced, deleted, invalid, other})
	want := []error{nil, cluster.ErrFenced, cluster.ErrNoState, cluster.ErrInvalidSessionID, nil}
	if len(errs) != len(want) {
		t.Fatalf("RenewAll of %d leases returned %d errors", len(want), len(errs))
	}
	for i, err := range errs {
		if (want[i] == nil) != (err == nil) || !errors.Is(err, want[i]) {
			t.Errorf("RenewAll error %d = %v, want %v", i, err, want[i])
		}
	}
}

// leaseIsAValue: a lease is a value: another store of the same node (a
// connection of its own) writes with it as well as the one that gave it,
// in turns.
func (s *suite) leaseIsAValue(t *testing.T) {
	ctx := testContext(t)
	n := s.long(t, 1)
	other := node{s.h.New(t, LongLease, LongWindow), n[0].id}
	ss, l := create(t, ctx, n[0], nil)
	for i, nd := range []node{other, n[0], other, n[0]} {
		num := uint64(i + 1)
		write(t, ctx, nd, l, &session.Entry{First: num, Messages: text("m", i+1, i+1), Received: num})
	}
	if err := other.Renew(ctx, l); err != nil {
		t.Fatalf("Renew by another store of the node: %v", err)
	}
	wantState(t, load(t, ctx, n[0], ss, l), 4, 0, 4, text("m", 1, 4), nil, nil)
	if err := other.Delete(ctx, l); err != nil {
		t.Fatalf("Delete by another store of the node: %v", err)
	}
	wantErr(t, "Write after the other store deleted", n[0].Write(ctx, l, &session.Entry{First: 5, Messages: text("m", 5, 5)}), cluster.ErrNoState)
}
