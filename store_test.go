package tether_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// directory is what the servers of a cluster in miniature share: which
// server's store holds each session. A real cluster keeps it elsewhere and
// relays over a network; here the relay is a call, which is enough to show
// that a server serves a session it does not hold through Options.Store
// alone.
type directory struct {
	mu     sync.Mutex
	owners map[string]*session.MemoryStore // guarded by mu
	calls  []string                        // what relays passed on; guarded by mu
}

func (d *directory) owner(id string) *session.MemoryStore {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.owners[id]
}

func (d *directory) record(call string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, call)
}

func (d *directory) relayed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// sharedStore is one server's Store: the sessions it holds in a
// MemoryStore, and for the others an Endpoint that relays to the store of
// the server that holds them.
type sharedStore struct {
	*session.MemoryStore
	dir *directory
}

func (st sharedStore) Add(l *session.Local) error {
	if err := st.MemoryStore.Add(l); err != nil {
		return err
	}
	st.dir.mu.Lock()
	defer st.dir.mu.Unlock()
	st.dir.owners[l.ID()] = st.MemoryStore
	return nil
}

func (st sharedStore) Remove(l *session.Local) {
	st.MemoryStore.Remove(l)
	st.dir.mu.Lock()
	defer st.dir.mu.Unlock()
	if st.dir.owners[l.ID()] == st.MemoryStore {
		delete(st.dir.owners, l.ID())
	}
}

func (st sharedStore) Lookup(id, token string) (session.Endpoint, error) {
	if e, err := st.MemoryStore.Lookup(id, token); err == nil {
		return e, nil
	}
	owner := st.dir.owner(id)
	if owner == nil {
		return nil, session.ErrUnknownSession
	}
	e, err := owner.Lookup(id, token) // the owner checks the token
	if err != nil {
		return nil, err
	}
	return &relay{Endpoint: e, dir: st.dir}, nil
}

// relay is the Endpoint of a session another server holds: it passes every
// call on, and records the ones a transport makes to attach, deliver and
// close, so that the test sees they went through it.
type relay struct {
	session.Endpoint
	dir *directory
}

func (r *relay) Attach(opts session.AttachOptions) (session.Link, error) {
	r.dir.record("Attach " + opts.Transport)
	return r.Endpoint.Attach(opts)
}

func (r *relay) Deliver(ctx context.Context, seq uint64, msgs []wire.Message) error {
	r.dir.record(fmt.Sprintf("Deliver %d+%d", seq, len(msgs)))
	return r.Endpoint.Deliver(ctx, seq, msgs)
}

func (r *relay) CloseFromClient(ce wire.CloseError) {
	r.dir.record(fmt.Sprintf("CloseFromClient %d", ce.Code))
	r.Endpoint.CloseFromClient(ce)
}

// TestStoreServesSessionHeldElsewhere: with Options.Store, a server finds
// a session that another server holds and serves it through a relaying
// Endpoint: a client that negotiated with server A sends, polls and closes
// through server B, and A's handler echoes as for a client of its own.
// Sessions() counts the sessions a server holds, and an unknown session is
// 404 on both.
func TestStoreServesSessionHeldElsewhere(t *testing.T) {
	dir := &directory{owners: make(map[string]*session.MemoryStore)}
	env := &conformance.Env{}
	a, baseA := env.Server(t, conformance.Echo, &tether.Options{Store: sharedStore{session.NewMemoryStore(0), dir}})
	b, baseB := env.Server(t, conformance.Echo, &tether.Options{Store: sharedStore{session.NewMemoryStore(0), dir}})

	n := negotiate(t, baseA)
	if a.Sessions() != 1 || b.Sessions() != 0 {
		t.Fatalf("after negotiate with A: A holds %d sessions, B %d, want 1, 0", a.Sessions(), b.Sessions())
	}
	q := fmt.Sprintf("?session=%s&token=%s", n.Session, n.Token)
	if code, body := do(t, http.MethodPost, baseB+"send"+q+"&seq=1", "", wire.AppendBatchFrame(nil, []byte("mvia B"))); code != http.StatusNoContent {
		t.Fatalf("send through B: %d %q", code, body)
	}
	code, body := do(t, http.MethodGet, baseB+"longpoll"+q+"&received=0", "", nil)
	if code != http.StatusOK {
		t.Fatalf("poll through B: %d %q", code, body)
	}
	var got []string
	err := wire.ParseBatch([]byte(body), 1<<20, func(f wire.Frame) error {
		if f.IsMessage() {
			got = append(got, string(f.Message.Data))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("poll through B: %v", err)
	}
	if !slices.Equal(got, []string{"via B"}) {
		t.Fatalf("poll through B carried %q, want the echo [\"via B\"]", got)
	}
	if code, body := do(t, http.MethodGet, baseB+"longpoll"+fmt.Sprintf("?session=%s&token=wrong&received=1", n.Session), "", nil); code != http.StatusNotFound {
		t.Errorf("poll through B with a wrong token: %d %q, want 404", code, body)
	}

	closing := wire.AppendBatchFrame(nil, wire.AppendClose(nil, wire.CloseError{Code: wire.StatusNormalClosure, Reason: "done"}))
	if code, body := do(t, http.MethodPost, baseB+"send"+q+"&received=1", "", closing); code != http.StatusNoContent {
		t.Fatalf("close through B: %d %q", code, body)
	}
	want := []string{"Deliver 1+1", "Attach longpoll", "CloseFromClient 1000"}
	if got := dir.relayed(); !slices.Equal(got, want) {
		t.Errorf("relayed calls = %q, want %q", got, want)
	}
	if a.Sessions() != 0 {
		t.Errorf("after the client's close: A holds %d sessions, want 0", a.Sessions())
	}
	for name, base := range map[string]string{"A": baseA, "B": baseB} {
		if code, _ := do(t, http.MethodGet, base+"longpoll"+q+"&received=1", "", nil); code != http.StatusNotFound {
			t.Errorf("poll through %s after the close: %d, want 404", name, code)
		}
	}
}
