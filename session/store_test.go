package session_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

func TestMemoryStoreAdd(t *testing.T) {
	st := session.NewMemoryStore(2)
	a, b, c := newSession(t, nil), newSession(t, nil), newSession(t, nil)
	for _, s := range []*session.Local{a, b} {
		if err := st.Add(s); err != nil {
			t.Fatalf("Add = %v, want nil", err)
		}
	}
	if err := st.Add(c); !errors.Is(err, session.ErrTooManySessions) {
		t.Errorf("Add beyond max = %v, want ErrTooManySessions", err)
	}
	if st.Len() != 2 || len(st.Sessions()) != 2 {
		t.Errorf("Len(), len(Sessions()) = %d, %d, want 2, 2", st.Len(), len(st.Sessions()))
	}
	st.Remove(a)
	if err := st.Add(c); err != nil {
		t.Errorf("Add after Remove = %v, want nil", err)
	}
}

func TestMemoryStoreUnbounded(t *testing.T) {
	st := session.NewMemoryStore(0)
	for range 50 {
		if err := st.Add(newSession(t, nil)); err != nil {
			t.Fatalf("Add to an unbounded store = %v, want nil", err)
		}
	}
	if st.Len() != 50 {
		t.Errorf("Len() = %d, want 50", st.Len())
	}
}

func TestMemoryStoreLookup(t *testing.T) {
	st := session.NewMemoryStore(0)
	s, other := newSession(t, nil), newSession(t, nil)
	st.Add(s)
	st.Add(other)
	lookups := []struct {
		name      string
		id, token string
		want      session.Endpoint
	}{
		{"match", s.ID(), s.Token(), s},
		{"other match", other.ID(), other.Token(), other},
		{"wrong token", s.ID(), other.Token(), nil},
		{"empty token", s.ID(), "", nil},
		{"token prefix", s.ID(), s.Token()[:10], nil},
		{"unknown id", "no-such-session", s.Token(), nil},
		{"empty id", "", "", nil},
		{"token as id", s.Token(), s.Token(), nil},
	}
	for _, tt := range lookups {
		got, err := st.Lookup(tt.id, tt.token)
		if got != tt.want || (tt.want == nil) != errors.Is(err, session.ErrUnknownSession) {
			t.Errorf("%s: Lookup(%q, %q) = %v, %v, want %v", tt.name, tt.id, tt.token, got, err, tt.want)
		}
	}
}

func TestMemoryStoreRemove(t *testing.T) {
	st := session.NewMemoryStore(0)
	s := newSession(t, nil)
	st.Add(s)
	st.Remove(newSession(t, nil)) // not stored: nothing happens
	if st.Len() != 1 {
		t.Fatalf("Len() after removing a session not stored = %d, want 1", st.Len())
	}
	st.Remove(s)
	if _, err := st.Lookup(s.ID(), s.Token()); !errors.Is(err, session.ErrUnknownSession) {
		t.Errorf("Lookup after Remove = %v, want ErrUnknownSession", err)
	}
	if st.Len() != 0 || len(st.Sessions()) != 0 {
		t.Errorf("Len(), len(Sessions()) after Remove = %d, %d, want 0, 0", st.Len(), len(st.Sessions()))
	}
	st.Remove(s) // twice: nothing happens
}

// TestMemoryStoreOnFinish wires the store the way a server does: a session
// removes itself when it finishes.
func TestMemoryStoreOnFinish(t *testing.T) {
	st := session.NewMemoryStore(0)
	s := session.New(testConfig(), session.RequestInfo{}, st.Remove)
	st.Add(s)
	s.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	if _, err := st.Lookup(s.ID(), s.Token()); !errors.Is(err, session.ErrUnknownSession) || st.Len() != 0 {
		t.Errorf("Lookup of a finished session = %v (Len %d), want ErrUnknownSession (Len 0)", err, st.Len())
	}
}

// TestMemoryStoreShrinks checks that a store lets go of the memory that
// held a flood of sessions once they are removed: a Go map never shrinks by
// itself.
func TestMemoryStoreShrinks(t *testing.T) {
	const n = 50_000
	all := make([]*session.Local, n)
	for i := range all {
		all[i] = session.New(testConfig(), session.RequestInfo{}, nil)
	}
	defer func() {
		for _, s := range all {
			s.Abort(wire.CloseError{Code: wire.StatusGoingAway})
		}
	}()
	st := session.NewMemoryStore(0)
	base := liveHeap()
	for _, s := range all {
		if err := st.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	full := liveHeap() - base
	for _, s := range all[1:] {
		st.Remove(s)
	}
	left := liveHeap() - base
	t.Logf("store of %d sessions: %d bytes; with 1 left: %d bytes", n, full, left)
	if st.Len() != 1 {
		t.Errorf("Len() = %d, want 1", st.Len())
	}
	if left > full/8 {
		t.Errorf("the store holds %d bytes for 1 session, after %d for %d: it kept the flood's memory", left, full, n)
	}
	runtime.KeepAlive(st)
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
