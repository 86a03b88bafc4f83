// Package statetest checks that a cluster.StateStore keeps every promise
// of the StateStore's documentation, on the engine it runs on. The stores
// in this module run it (redisstate against a real redis-server,
// natsstate against a real nats-server with JetStream); so can a store of
// one's own:
//
//	func TestConformance(t *testing.T) {
//		statetest.Run(t, statetest.Harness{
//			New: func(t *testing.T, leaseTTL, window time.Duration) cluster.StateStore {
//				return mystore.New(..., leaseTTL, window)
//			},
//		})
//	}
//
// The checks act as the nodes of a cluster do: each session is created by
// one store and taken over by others, and a store whose lease was taken
// over keeps writing, as an owner thought dead that comes back does.
package statetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Timeout bounds each check: a check that waits longer for something the
// store promised (a lease to lapse, state to expire) fails.
const Timeout = 30 * time.Second

// The durations of the stores the checks get from Harness.New: LongLease
// for the checks that need a lease that does not lapse while they run,
// ShortLease and ShortWindow for those that wait for a lease to lapse or
// for the state to expire.
const (
	LongLease   = time.Minute
	LongWindow  = 2 * time.Minute
	ShortLease  = 300 * time.Millisecond
	ShortWindow = time.Second
)

// Harness is what Run needs of a StateStore implementation.
type Harness struct {
	// New returns a store with the given LeaseTTL and resume window (the
	// time the state lasts after its owner's last write or renewal). The
	// stores of every call with the same durations must share their
	// sessions, as the nodes of one cluster do: each stands for one node.
	// Run calls it many times; the harness closes what it opens when t
	// ends. Required.
	New func(t *testing.T, leaseTTL, window time.Duration) cluster.StateStore
	// Corrupt, if set, damages the state stored for session id so that it
	// no longer decodes (a malformed counter, say), as a store written by
	// hand or by a faulty program could be. Run then checks that TakeOver
	// and Write return an error wrapping cluster.ErrStateCorrupt.
	Corrupt func(t *testing.T, id string)
	// OtherVersion, if set, changes the state stored for session id so
	// that it claims another format version. Run then checks that every
	// call on the session returns an error wrapping
	// cluster.ErrStateVersion.
	OtherVersion func(t *testing.T, id string)
}

// Run checks the stores that h makes, as subtests of t. Every session it
// creates has an id of its own ("statetest.<random>"), so the engine may be
// shared with other work; the sessions it leaves expire with their window.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("statetest: Harness.New is nil")
	}
	s := &suite{h: h}
	for _, c := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"CreateThenTakeOver", s.createThenTakeOver},
		{"CreateExists", s.createExists},
		{"InvalidSessionID", s.invalidSessionID},
		{"TakeOverErrors", s.takeOverErrors},
		{"TakeOverRetried", s.takeOverRetried},
		{"WriteMessages", s.writeMessages},
		{"WriteSkipsStored", s.writeSkipsStored},
		{"WriteOutOfOrder", s.writeOutOfOrder},
		{"WriteInvalidBatch", s.writeInvalidBatch},
		{"Topics", s.topics},
		{"TopicOffsets", s.topicOffsets},
		{"TopicInfo", s.topicInfo},
		{"Fenced", s.fenced},
		{"LeaseIsAValue", s.leaseIsAValue},
		{"Release", s.release},
		{"ReleaseFences", s.releaseFences},
		{"Delete", s.delete},
		{"RenewAll", s.renewAll},
		{"LeaseLapses", s.leaseLapses},
		{"RenewExtendsLease", s.renewExtendsLease},
		{"WriteExtendsLease", s.writeExtendsLease},
		{"RenewAllExtendsLease", s.renewAllExtendsLease},
		{"WriteWhileRenewing", s.writeWhileRenewing},
		{"StateExpires", s.stateExpires},
		{"RenewKeepsState", s.renewKeepsState},
		{"TakeOverRace", s.takeOverRace},
		{"FencedWhileWriting", s.fencedWhileWriting},
		{"Corrupt", s.corrupt},
		{"OtherVersion", s.otherVersion},
	} {
		t.Run(c.name, c.fn)
	}
}

// suite holds what the checks share.
type suite struct {
	h Harness
}

// node is one node's store and id.
type node struct {
	cluster.StateStore
	id string
}

// nodes returns n nodes on stores of the same durations, named "A", "B"...
// after a random prefix of their own.
func (s *suite) nodes(t *testing.T, n int, leaseTTL, window time.Duration) []node {
	t.Helper()
	prefix := randomID()
	nodes := make([]node, n)
	for i := range nodes {
		nodes[i] = node{s.h.New(t, leaseTTL, window), prefix + string(rune('A'+i))}
		if got := nodes[i].LeaseTTL(); got != leaseTTL {
			t.Fatalf("LeaseTTL() = %v, want %v", got, leaseTTL)
		}
	}
	return nodes
}

// long returns n nodes with a lease that does not lapse while a check runs.
func (s *suite) long(t *testing.T, n int) []node {
	t.Helper()
	return s.nodes(t, n, LongLease, LongWindow)
}

// randomID returns 8 random hex digits.
func randomID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newID returns a session id of the form the nodes give: "<node>.<random>".
func newID() string { return "statetest." + randomID() + randomID() }

// testContext returns a context that ends after Timeout or when t ends.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// session is one session's id and token, created by a node.
type sess struct {
	id, token string
}

// create creates a fresh session on nd with info, and checks the lease.
func create(t *testing.T, ctx context.Context, nd node, info []byte) (sess, cluster.Lease) {
	t.Helper()
	ss := sess{id: newID(), token: "token-" + randomID()}
	l, err := nd.Create(ctx, ss.id, ss.token, nd.id, info)
	if err != nil {
		t.Fatalf("Create(%s): %v", ss.id, err)
	}
	if want := (cluster.Lease{ID: ss.id, Node: nd.id, Epoch: 1}); l != want {
		t.Fatalf("Create returned %+v, want %+v", l, want)
	}
	return ss, l
}

// takeOver takes ss over on nd or fails t, and checks the lease.
func takeOver(t *testing.T, ctx context.Context, nd node, ss sess) (cluster.Lease, *cluster.State) {
	t.Helper()
	l, st, err := nd.TakeOver(ctx, ss.id, ss.token, nd.id)
	if err != nil {
		t.Fatalf("TakeOver(%s) by %s: %v", ss.id, nd.id, err)
	}
	if l.ID != ss.id || l.Node != nd.id || l.Epoch == 0 {
		t.Fatalf("TakeOver by %s returned lease %+v", nd.id, l)
	}
	if st == nil || st.ID != ss.id {
		t.Fatalf("TakeOver returned state %+v for session %s", st, ss.id)
	}
	return l, st
}

// load returns the state of ss as its holder l sees it: the holder's
// retried TakeOver, which changes nothing.
func load(t *testing.T, ctx context.Context, nd node, ss sess, l cluster.Lease) *cluster.State {
	t.Helper()
	got, st := takeOver(t, ctx, nd, ss)
	if got != l {
		t.Fatalf("TakeOver by the holder returned lease %+v, want %+v", got, l)
	}
	return st
}

// write writes e with l or fails t.
func write(t *testing.T, ctx context.Context, nd node, l cluster.Lease, e *session.Entry) {
	t.Helper()
	if err := nd.Write(ctx, l, e); err != nil {
		t.Fatalf("Write(%+v) with epoch %d: %v", e, l.Epoch, err)
	}
}

// wantErr fails t unless err wraps want.
func wantErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", call, err, want)
	}
}

// wantOwned fails t unless err is an *cluster.OwnedError naming owner.
func wantOwned(t *testing.T, call string, err error, owner string) {
	t.Helper()
	var oe *cluster.OwnedError
	if !errors.As(err, &oe) || !errors.Is(err, cluster.ErrOwned) {
		t.Fatalf("%s = %v, want an *OwnedError", call, err)
	}
	if oe.Node != owner {
		t.Fatalf("%s names node %q, want %q", call, oe.Node, owner)
	}
}

// text returns text messages "<prefix><n>" numbered from first to last.
func text(prefix string, first, last int) []wire.Message {
	var ms []wire.Message
	for n := first; n <= last; n++ {
		ms = append(ms, wire.Message{Type: wire.Text, Data: fmt.Appendf(nil, "%s%d", prefix, n)})
	}
	return ms
}

// wantState fails t unless st holds the counters, the messages and the
// topics given (offsets nil for none).
func wantState(t *testing.T, st *cluster.State, sent, acked, received uint64, out []wire.Message, topics []string, offsets map[string]uint64) {
	t.Helper()
	if st.Sent != sent || st.Acked != acked || st.Received != received {
		t.Errorf("state counters sent %d, acked %d, received %d; want %d, %d, %d", st.Sent, st.Acked, st.Received, sent, acked, received)
	}
	if !equalMessages(st.Out, out) {
		t.Errorf("state Out = %s, want %s", showMessages(st.Out), showMessages(out))
	}
	if !slices.Equal(st.Topics, topics) {
		t.Errorf("state Topics = %q, want %q", st.Topics, topics)
	}
	if (st.TopicOffsets == nil) != (offsets == nil) || len(st.TopicOffsets) != len(offsets) {
		t.Errorf("state TopicOffsets = %v, want %v", st.TopicOffsets, offsets)
	}
	for topic, o := range offsets {
		if got, ok := st.TopicOffsets[topic]; !ok || got != o {
			t.Errorf("state TopicOffsets = %v, want %v", st.TopicOffsets, offsets)
			break
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func equalMessages(a, b []wire.Message) bool {
	return slices.EqualFunc(a, b, func(x, y wire.Message) bool {
		return x.Type == y.Type && string(x.Data) == string(y.Data)
	})
}

func showMessages(ms []wire.Message) string {
	s := "["
	for i, m := range ms {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d:%q", m.Type, m.Data)
	}
	return s + "]"
}

// eventually calls try every few milliseconds until it returns true, and
// fails t if it has not after Timeout.
func eventually(t *testing.T, what string, try func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !try() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, Timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
