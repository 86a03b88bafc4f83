package tether_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// stateDir is the shared store of a durable cluster in miniature: each
// session's stored state, and which server owns it (the epoch grows at
// each takeover, and a Write of an older epoch is refused, as a lease's
// fencing does).
type stateDir struct {
	mu     sync.Mutex
	states map[string]*storedSession // guarded by mu
	down   bool                      // OpenJournal fails; guarded by mu
}

type storedSession struct {
	token    string
	info     []byte
	epoch    int
	owner    *durableStore
	acked    uint64
	out      []wire.Message
	received uint64
	topics   map[string]bool
	writes   []session.Entry
}

// durableStore is one server's session.DurableStore: its sessions in a
// MemoryStore, and a session it does not hold taken over from the
// stateDir when its owner is dead.
type durableStore struct {
	*session.MemoryStore
	dir     *stateDir
	dead    bool // guarded by dir.mu: its sessions may be taken over
	restore func(info session.RequestInfo, r session.Restored) (*session.Local, error)
}

var _ session.DurableStore = (*durableStore)(nil)

// journal writes one session's changes, under the epoch it owns.
type journal struct {
	dir   *stateDir
	id    string
	epoch int
}

func (j *journal) Write(ctx context.Context, e *session.Entry) error {
	j.dir.mu.Lock()
	defer j.dir.mu.Unlock()
	st := j.dir.states[j.id]
	if st == nil || st.epoch != j.epoch {
		return fmt.Errorf("epoch %d: %w", j.epoch, session.ErrLeaseLost)
	}
	c := *e
	c.Messages = slices.Clone(e.Messages)
	st.writes = append(st.writes, c)
	for i, m := range e.Messages {
		if e.First+uint64(i) > st.acked+uint64(len(st.out)) {
			st.out = append(st.out, m)
		}
	}
	if e.Acked > st.acked {
		st.out = st.out[e.Acked-st.acked:]
		st.acked = e.Acked
	}
	st.received = max(st.received, e.Received)
	for _, t := range e.Subscribe {
		st.topics[t] = true
	}
	for _, t := range e.Unsubscribe {
		delete(st.topics, t)
	}
	return nil
}

func (st *durableStore) OpenJournal(ctx context.Context, id, token string, info session.RequestInfo) (session.Journal, error) {
	data, err := info.MarshalBinary()
	if err != nil {
		return nil, err
	}
	st.dir.mu.Lock()
	defer st.dir.mu.Unlock()
	if st.dir.down {
		return nil, errors.New("store down")
	}
	st.dir.states[id] = &storedSession{token: token, info: data, epoch: 1, owner: st, topics: map[string]bool{}}
	return &journal{dir: st.dir, id: id, epoch: 1}, nil
}

func (st *durableStore) SetRestore(restore func(info session.RequestInfo, r session.Restored) (*session.Local, error)) {
	st.restore = restore
}

func (st *durableStore) Lookup(id, token string) (session.Endpoint, error) {
	if e, err := st.MemoryStore.Lookup(id, token); err == nil {
		return e, nil
	}
	st.dir.mu.Lock()
	s := st.dir.states[id]
	if s == nil || s.token != token || !s.owner.dead {
		st.dir.mu.Unlock()
		return nil, session.ErrUnknownSession
	}
	s.epoch++
	s.owner = st
	r := session.Restored{ID: id, Token: token, Acked: s.acked, Out: slices.Clone(s.out), Received: s.received,
		Journal: &journal{dir: st.dir, id: id, epoch: s.epoch}}
	r.TopicOffsets = map[string]uint64{}
	for t := range s.topics {
		r.Topics = append(r.Topics, t)
		// As a store of nodes that keep a topic history would give: how
		// far the session had come in the topic (the servers here number
		// no topic, so nothing was published after 0). Without it the
		// takeover closes the session with 4000 topic gap.
		r.TopicOffsets[t] = 0
	}
	var info session.RequestInfo
	err := info.UnmarshalBinary(s.info)
	st.dir.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return st.restore(info, r)
}

// newStateDir returns a stateDir and the stores of two servers that share
// it.
func newStateDir() (*stateDir, *durableStore, *durableStore) {
	dir := &stateDir{states: map[string]*storedSession{}}
	return dir, &durableStore{MemoryStore: session.NewMemoryStore(0), dir: dir}, &durableStore{MemoryStore: session.NewMemoryStore(0), dir: dir}
}

// durableServer starts a server on store whose Callbacks subscribe each
// new session to "news" and echo each message, saying whether the session
// was taken over.
func durableServer(t *testing.T, store *durableStore) (*tether.Server, string) {
	t.Helper()
	var srv *tether.Server
	cb := &tether.Callbacks{
		Open: func(s *session.Session) {
			if !s.TakenOver() {
				if err := srv.Subscribe(s.Context(), s, "news", nil); err != nil {
					t.Errorf("Subscribe: %v", err)
				}
			}
		},
		Message: func(s *session.Session, m wire.Message) {
			reply := fmt.Sprintf("echo %s taken over %v", m.Data, s.TakenOver())
			if err := s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte(reply)}); err != nil {
				t.Errorf("Send: %v", err)
			}
		},
	}
	srv = tether.NewServer(cb, &tether.Options{Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	return srv, hs.URL + "/rt/"
}

// TestDurableTakeOver: a session of a durable store survives its server:
// what the first server stored (the client's message, its echo, the topic)
// is where the second one goes on from, the application there is told it
// took the session over, and the client gets every echo once.
func TestDurableTakeOver(t *testing.T) {
	dir, storeA, storeB := newStateDir()
	_, baseA := durableServer(t, storeA)
	b, baseB := durableServer(t, storeB)

	n := negotiate(t, baseA)
	q := fmt.Sprintf("?session=%s&token=%s", n.Session, n.Token)
	if code, body := do(t, http.MethodPost, baseA+"send"+q+"&seq=1", "", wire.AppendBatchFrame(nil, []byte("mone"))); code != http.StatusNoContent {
		t.Fatalf("send to A: %d %q", code, body)
	}
	dir.mu.Lock()
	st := dir.states[n.Session]
	last := st.writes[len(st.writes)-1]
	if last.Received != 1 || len(last.Messages) != 1 || !st.topics["news"] {
		t.Errorf("A's last write: received %d, %d messages; topics %v; want 1, the echo, [news]", last.Received, len(last.Messages), st.topics)
	}
	storeA.dead = true
	dir.mu.Unlock()

	// A is gone: B takes the session over, and the client resends what A
	// may not have answered.
	if code, body := do(t, http.MethodPost, baseB+"send"+q+"&seq=1", "", wire.AppendBatchFrame(wire.AppendBatchFrame(nil, []byte("mone")), []byte("mtwo"))); code != http.StatusNoContent {
		t.Fatalf("send to B: %d %q", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s *session.Session
	for _, l := range storeB.Sessions() {
		s = l.Session
	}
	if s == nil || !slices.Equal(b.Topics(s), []string{"news"}) {
		t.Fatalf("B holds %v, subscribed to %v; want the session, on news", s, b.Topics(s))
	}
	if err := b.Publish(ctx, "news", wire.Message{Type: wire.Text, Data: []byte("headline")}, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"echo one taken over false", "echo two taken over true", "headline"}
	var got []string
	for len(got) < len(want) && ctx.Err() == nil {
		code, body := do(t, http.MethodGet, baseB+"longpoll"+q+fmt.Sprintf("&received=%d", len(got)), "", nil)
		if code != http.StatusOK {
			t.Fatalf("poll B: %d %q", code, body)
		}
		wire.ParseBatch([]byte(body), 1<<20, func(f wire.Frame) error {
			if f.IsMessage() {
				got = append(got, string(f.Message.Data))
			}
			return nil
		})
	}
	if !slices.Equal(got, want) {
		t.Errorf("client got %q, want %q", got, want)
	}
}

// TestDurableNegotiateUnavailable: a durable store that cannot store a new
// session makes negotiate answer 503 try again.
func TestDurableNegotiateUnavailable(t *testing.T) {
	dir := &stateDir{states: map[string]*storedSession{}, down: true}
	srv, base := durableServer(t, &durableStore{MemoryStore: session.NewMemoryStore(0), dir: dir})
	code, body := do(t, http.MethodPost, base+"negotiate?v=1", "", nil)
	if code != http.StatusServiceUnavailable || body != "try again\n" {
		t.Errorf("negotiate = %d %q, want 503 try again", code, body)
	}
	if srv.Sessions() != 0 {
		t.Errorf("%d sessions, want 0", srv.Sessions())
	}
}

// TestDurableWebSocketEcho: over a WebSocket, a durable session echoes
// every message once and in order, each echo stored with the receipt of
// its message, and the acknowledgements count only what is stored.
func TestDurableWebSocketEcho(t *testing.T) {
	dir := &stateDir{states: map[string]*storedSession{}}
	_, base := durableServer(t, &durableStore{MemoryStore: session.NewMemoryStore(0), dir: dir})
	n := negotiate(t, base)
	c := dialWebSocket(t, base, n, 0, 1)
	defer c.Close()
	const count = 200
	for i := range count {
		c.WriteMessage(ws.TextMessage, []byte(fmt.Sprint("m", i)))
	}
	for got, acked := 0, uint64(0); got < count || acked < count; {
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d echoes, acknowledged %d: %v", got, acked, err)
		}
		f, err := wire.ParseFrame(p, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.IsMessage():
			if want := fmt.Sprintf("echo %d taken over false", got); string(f.Message.Data) != want {
				t.Fatalf("echo %q, want %q", f.Message.Data, want)
			}
			got++
		case f.Type == wire.FrameAck:
			dir.mu.Lock()
			stored := dir.states[n.Session].received
			dir.mu.Unlock()
			if f.Received > stored {
				t.Fatalf("acknowledgement of %d with %d stored", f.Received, stored)
			}
			acked = f.Received
		}
	}
	dir.mu.Lock()
	defer dir.mu.Unlock()
	t.Logf("%d messages echoed in %d writes", count, len(dir.states[n.Session].writes))
	for _, e := range dir.states[n.Session].writes {
		if e.Received != 0 && len(e.Messages) == 0 {
			t.Errorf("a write of received %d without its echo", e.Received)
		}
	}
}

// TestDurableWebSocketTakeOver: a WebSocket client whose session is taken
// over mid-burst attaches to the new server, resends what was not
// acknowledged, and gets every echo once and in order.
func TestDurableWebSocketTakeOver(t *testing.T) {
	dir, storeA, storeB := newStateDir()
	_, baseA := durableServer(t, storeA)
	_, baseB := durableServer(t, storeB)
	n := negotiate(t, baseA)
	const count = 600
	var echoes []string
	acked := uint64(0) // client messages the server acknowledged
	for _, base := range []string{baseA, baseB} {
		c := dialWebSocket(t, base, n, uint64(len(echoes)), acked+1)
		for i := acked; i < count; i++ {
			c.WriteMessage(ws.TextMessage, []byte(fmt.Sprint("m", i)))
		}
		for len(echoes) < count || acked < count {
			if base == baseA && len(echoes) >= count/3 {
				// A dies mid-burst: B takes the session over when the
				// client attaches there.
				dir.mu.Lock()
				storeA.dead = true
				dir.mu.Unlock()
				break
			}
			_, p, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("after %d echoes, acknowledged %d: %v", len(echoes), acked, err)
			}
			f, err := wire.ParseFrame(p, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case f.IsMessage():
				echoes = append(echoes, string(f.Message.Data))
			case f.Type == wire.FrameAck:
				acked = f.Received
			}
		}
		c.Close()
	}
	for i, e := range echoes {
		if n, _, _ := strings.Cut(strings.TrimPrefix(e, "echo "), " "); n != fmt.Sprint(i) {
			t.Fatalf("echo %d = %q", i, e)
		}
	}
}
