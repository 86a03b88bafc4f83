package cluster_test

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/natsstate"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// durableLease is the tests' LeaseTTL: a dead node's sessions are taken
// over this long after its last write: long enough that a loaded machine
// renews in time (a lapse would be a takeover the test did not make, which
// the tests survive but need not). It bounds nothing in the tests.
const durableLease = time.Second

// durable is a cluster of durable nodes on a real redis-server, each node
// with a Redis client of its own (clients[i] is node i's), or on a real
// nats-server's JetStream (startDurableNATS).
type durable struct {
	*clustertest.Cluster
	redis   *redis.Client // the tests' own; nil on NATS
	clients []*redis.Client
	cut     []func() // cut[i] closes node i's connection to the state store

	mu        sync.Mutex
	takenOver []string // ids of the sessions the application saw taken over

	// front, while set, is closed when the front lets the requests it
	// holds go on (holdFront).
	front atomic.Pointer[chan struct{}]
}

// holdFront holds every request that reaches the front until the returned
// function is called: no client's request reaches a node meanwhile.
func (d *durable) holdFront() (resume func()) {
	held := make(chan struct{})
	d.front.Store(&held)
	return sync.OnceFunc(func() {
		d.front.Store(nil)
		close(held)
	})
}

// startDurable starts n durable nodes serving an echo through Callbacks;
// every negotiate goes to node 0, the rest round robin.
func startDurable(t *testing.T, n int) *durable {
	t.Helper()
	return startDurableWith(t, n, nil)
}

// startDurableWith is startDurable; with history not nil, each node keeps a
// topic history (a redisstate.TopicHistory with those options) on its own
// Redis client.
func startDurableWith(t *testing.T, n int, history *redisstate.HistoryOptions) *durable {
	t.Helper()
	return startDurableWrapped(t, n, history, nil)
}

// startDurableWrapped is startDurableWith, each node's History wrapped by
// wrap when it is not nil.
func startDurableWrapped(t *testing.T, n int, history *redisstate.HistoryOptions, wrap func(cluster.History) cluster.History) *durable {
	t.Helper()
	e := enginetest.RedisT(t)
	d := &durable{redis: redis.NewClient(&redis.Options{Addr: e.Addr})}
	t.Cleanup(func() { d.redis.Close() })
	for range n {
		c := redis.NewClient(&redis.Options{Addr: e.Addr, MaxRetries: -1, DialTimeout: time.Second})
		t.Cleanup(func() { c.Close() })
		d.clients = append(d.clients, c)
		d.cut = append(d.cut, func() { c.Close() })
	}
	d.start(t, n, func(i int) cluster.StateStore {
		s, err := redisstate.New(d.clients[i], &redisstate.Options{LeaseTTL: durableLease})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(i int) cluster.History {
		if history == nil {
			return nil
		}
		h, err := redisstate.NewHistory(d.clients[i], history)
		if err != nil {
			t.Fatal(err)
		}
		if wrap != nil {
			return wrap(h)
		}
		return h
	})
	return d
}

// startDurableNATS is startDurable with the nodes' state in a real
// nats-server's JetStream (natsstate), each node on a connection of its
// own; no topic history.
func startDurableNATS(t *testing.T, n int) *durable {
	t.Helper()
	e := enginetest.NATSJetStreamT(t)
	d := &durable{}
	stores := make([]cluster.StateStore, n)
	for i := range stores {
		nc, err := nats.Connect(e.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if stores[i], err = natsstate.New(testContext(t), nc, &natsstate.Options{LeaseTTL: durableLease}); err != nil {
			t.Fatal(err)
		}
		d.cut = append(d.cut, nc.Close)
	}
	d.start(t, n, func(i int) cluster.StateStore { return stores[i] }, func(int) cluster.History { return nil })
	return d
}

// durableStores are the state stores some tests run on each.
var durableStores = []struct {
	name  string
	start func(t *testing.T, n int) *durable
}{
	{"redis", startDurable},
	{"nats", startDurableNATS},
}

// start starts n durable nodes on state and history, serving an echo
// through Callbacks; every negotiate goes to node 0, the rest round robin.
func (d *durable) start(t *testing.T, n int, state func(i int) cluster.StateStore, history func(i int) cluster.History) {
	t.Helper()
	echo := &tether.Callbacks{
		Open: func(s *session.Session) {
			if s.TakenOver() {
				d.mu.Lock()
				d.takenOver = append(d.takenOver, s.ID())
				d.mu.Unlock()
			}
		},
		Message: func(s *session.Session, m wire.Message) {
			if topic, ok := strings.CutPrefix(string(m.Data), "subscribe"); ok {
				topic = cmp.Or(strings.TrimSpace(topic), "news")
				// Whichever node holds it, with presence info of its own.
				for _, nd := range d.Nodes {
					if nd.Server.Subscribe(s.Context(), s, topic, presenceInfo(s.ID())) == nil {
						break
					}
				}
			}
			relayEcho.Message(s, m)
		},
	}
	var nopts *cluster.NodeOptions
	var sopts *tether.Options
	if testing.Verbose() {
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		nopts, sopts = &cluster.NodeOptions{Logger: logger}, &tether.Options{Logger: logger}
	}
	d.Cluster = clustertest.Start(t, n, echo, &clustertest.Options{
		Node:    nopts,
		Server:  sopts,
		State:   state,
		History: history,
		Route: func(r *http.Request) int {
			if held := d.front.Load(); held != nil {
				<-*held
			}
			if path.Base(r.URL.Path) == "negotiate" {
				return 0
			}
			return -1
		},
	})
}

// kill stops node i as a killed process: its state store's connection
// first, so that it releases no lease and deletes no state, then the rest.
func (d *durable) kill(i int) {
	d.cut[i]()
	d.Kill(d.Nodes[i])
}

func (d *durable) wasTakenOver(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.takenOver {
		if t == id {
			return true
		}
	}
	return false
}

// held returns how many sessions the nodes other than node skip hold.
func (d *durable) held(skip int) int {
	k := 0
	for i, nd := range d.Nodes {
		if i != skip {
			k += nd.Server.Sessions()
		}
	}
	return k
}

// burst sends n numbered messages from c through the echo and reads them
// back, each exactly once and in order, calling mid once a third of them
// has come back; then it does the same with n/3 more, which the node that
// holds the session after mid answers.
func burst(ctx context.Context, c *client.Session, prefix string, n int, mid func()) error {
	if err := exchangeMid(ctx, c, prefix, n, mid); err != nil {
		return err
	}
	return exchangeErr(ctx, c, prefix+"after", n/3)
}

// dialDurable dials through the front on transport name, and fails the test
// if the client ever starts a new session.
func dialDurable(t *testing.T, ctx context.Context, url, name string) *client.Session {
	return dialTransport(t, ctx, url, name, &client.Options{
		OnReconnecting: func(ce wire.CloseError) { t.Errorf("the client started a new session after %v", ce) },
	})
}

// TestDurableNodeKilled: the node that holds a session is killed mid-burst
// (no lease released, nothing deleted); once its lease lapses another node
// takes the session over, and the client goes on with the same session, on
// every transport: every message echoed exactly once, in order, and the
// application told of the takeover.
func TestDurableNodeKilled(t *testing.T) {
	for _, name := range transport.Names() {
		t.Run(name, func(t *testing.T) { nodeKilled(t, startDurable(t, 3), name) })
	}
}

// TestDurableNodeKilledNATS is TestDurableNodeKilled with the state in NATS
// JetStream (natsstate), on WebSocket and on long polling.
func TestDurableNodeKilledNATS(t *testing.T) {
	for _, name := range []string{"websocket", "longpoll"} {
		t.Run(name, func(t *testing.T) { nodeKilled(t, startDurableNATS(t, 3), name) })
	}
}

// nodeKilled kills the owner of a session on d mid-burst, on transport
// name, then its next owner.
func nodeKilled(t *testing.T, d *durable, name string) {
	const messages = 1500
	ctx := testContext(t)
	s := dialDurable(t, ctx, d.URL, name)
	id := s.ID()
	if d.OwnerOf(id) != d.Nodes[0] {
		t.Fatalf("session %s not held by node 0", id)
	}
	if err := burst(ctx, s, "m", messages, func() { d.kill(0) }); err != nil {
		t.Fatal(err)
	}
	if s.ID() != id {
		t.Fatalf("ID() = %q, was %q", s.ID(), id)
	}
	if k := d.held(0); k != 1 || !d.wasTakenOver(id) {
		t.Fatalf("the live nodes hold %d sessions; taken over: %v", k, d.wasTakenOver(id))
	}
	// And again: its new owner is killed too.
	for i, nd := range d.Nodes[1:] {
		if nd.Server.Sessions() == 1 {
			if err := burst(ctx, s, "again", messages/3, func() { d.kill(i + 1) }); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if s.ID() != id {
		t.Fatalf("ID() = %q, was %q", s.ID(), id)
	}
}

// TestDurableLeaseLost: the owner loses its lease while alive (the epoch
// moves on in Redis, as when another node took the session over after a
// pause of the owner's): the owner drops the session without a close frame
// at its next write or renewal, and the client's next request has it taken
// over by a node, with nothing lost.
func TestDurableLeaseLost(t *testing.T) {
	for _, name := range []string{"websocket", "longpoll"} {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			d := startDurable(t, 3)
			s := dialDurable(t, ctx, d.URL, name)
			id := s.ID()
			err := burst(ctx, s, "m", 1000, func() {
				key := "tether:{" + id + "}:"
				if err := d.redis.HIncrBy(ctx, key+"state", "epoch", 1).Err(); err != nil {
					t.Error(err)
				}
				if err := d.redis.Del(ctx, key+"lease").Err(); err != nil {
					t.Error(err)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if s.ID() != id || !d.wasTakenOver(id) {
				t.Fatalf("ID() = %q, was %q; taken over: %v", s.ID(), id, d.wasTakenOver(id))
			}
		})
	}
}

// TestDurableHandover: a node that shuts down gracefully hands its
// sessions over (Handover, then the Server's Shutdown): their clients go
// on with the same session on the other nodes, nothing lost, without
// waiting for a lease to lapse; with the state in Redis and in NATS.
func TestDurableHandover(t *testing.T) {
	for _, store := range durableStores {
		t.Run(store.name, func(t *testing.T) { handover(t, store.start(t, 3)) })
	}
}

func handover(t *testing.T, d *durable) {
	ctx := testContext(t)
	s := dialDurable(t, ctx, d.URL, "sse")
	id := s.ID()
	raw := rawNegotiate(t, ctx, d.Nodes[0].URL)
	err := burst(ctx, s, "m", 1000, func() {
		if err := d.Nodes[0].Node.Handover(ctx); err != nil {
			t.Errorf("Handover: %v", err)
		}
		if err := d.Nodes[0].Server.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != id || d.held(0) != 1 {
		t.Fatalf("ID() = %q, was %q; the other nodes hold %d sessions", s.ID(), id, d.held(0))
	}
	// The node refuses new sessions meanwhile.
	if got := answer(t, ctx, http.MethodPost, d.Nodes[0].URL+"negotiate?v=1", nil); got[:3] != "503" {
		t.Fatalf("negotiate on the node handed over: %s", got)
	}
	// A session it handed over and that no node has taken over yet is not
	// taken back by it (its Shutdown would close it with 1001): 503, and
	// the client tries again, on another node, which takes it over; then
	// the node handed over relays to that one.
	send := func(nd *clustertest.Node, seq int) string {
		return answer(t, ctx, http.MethodPost, nd.URL+"send?"+raw.query()+"&seq="+strconv.Itoa(seq), sendBody("x"))
	}
	if got := send(d.Nodes[0], 1); got[:3] != "503" {
		t.Fatalf("send on the node handed over, the session not taken over yet: %s", got)
	}
	if got := send(d.Nodes[1], 1); got != "204" {
		t.Fatalf("send on another node: %s", got)
	}
	if got := send(d.Nodes[0], 2); got != "204" {
		t.Fatalf("send on the node handed over, the session taken over: %s", got)
	}
}

// lookupUntil looks session up on node nd until its answer is not
// ErrUnreachable (the dead owner's lease has not lapsed yet).
func lookupUntil(ctx context.Context, nd *clustertest.Node, rs rawSession) (session.Endpoint, error) {
	for {
		ep, err := nd.Node.Store(0).Lookup(rs.Session, rs.Token)
		if !errors.Is(err, session.ErrUnreachable) || ctx.Err() != nil {
			return ep, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestDurableTakeoverRace: two nodes look up, at once, a session whose
// owner was killed: one takes it over, the other relays to it; a message
// sent through each reaches the session once; with the state in Redis and
// in NATS.
func TestDurableTakeoverRace(t *testing.T) {
	for _, store := range durableStores {
		t.Run(store.name, func(t *testing.T) { takeoverRace(t, store.start(t, 3)) })
	}
}

func takeoverRace(t *testing.T, d *durable) {
	ctx := testContext(t)
	rs := rawNegotiate(t, ctx, d.Nodes[0].URL)
	if got := answer(t, ctx, http.MethodPost, d.Nodes[0].URL+"send?seq=1&"+rs.query(), sendBody("one")); got != "204" {
		t.Fatalf("send: %s", got)
	}
	d.kill(0)
	var wg sync.WaitGroup
	eps := make([]session.Endpoint, 3)
	start := make(chan struct{})
	for i := 1; i <= 2; i++ {
		wg.Go(func() {
			<-start
			ep, err := lookupUntil(ctx, d.Nodes[i], rs)
			if err != nil {
				t.Errorf("node %d: Lookup: %v", i, err)
			}
			eps[i] = ep
		})
	}
	close(start)
	wg.Wait()
	_, local1 := eps[1].(*session.Local)
	_, local2 := eps[2].(*session.Local)
	if local1 == local2 {
		t.Fatalf("node 1 restored it: %v, node 2: %v; want exactly one", local1, local2)
	}
	for i, seq := range []int{1, 2} {
		u := d.Nodes[i+1].URL + "send?seq=" + strconv.Itoa(seq+1) + "&" + rs.query()
		if got := answer(t, ctx, http.MethodPost, u, sendBody("after"+strconv.Itoa(seq))); got != "204" {
			t.Fatalf("send through node %d: %s", i+1, got)
		}
	}
	// The echoes of "one", "after1", "after2", each once: a long poll
	// from message 0 reads them all (the first echo was stored with the
	// receipt of "one").
	body := answer(t, ctx, http.MethodGet, d.Nodes[1].URL+"longpoll?received=0&"+rs.query(), nil)
	for _, want := range []string{"one", "after1", "after2"} {
		if n := strings.Count(body, want); n != 1 {
			t.Fatalf("long poll after the race: %q holds %q %d times", body, want, n)
		}
	}
}

// TestDurableStateUnavailable: a node that cannot reach Redis when it
// would take a session over answers 503 to its send and its attach (the
// client tries again), and never 4006 nor 404; a node that can takes it
// over.
func TestDurableStateUnavailable(t *testing.T) {
	ctx := testContext(t)
	d := startDurable(t, 3)
	rs := rawNegotiate(t, ctx, d.Nodes[0].URL)
	d.kill(0)
	d.clients[1].Close() // node 1 cannot reach Redis
	if _, err := lookupUntil(ctx, d.Nodes[2], rs); err != nil {
		// Wait, on a node that can, until the lease has lapsed...
		t.Fatalf("node 2: Lookup: %v", err)
	}
	// ...then node 1 still cannot take over, nor relay (it cannot learn
	// who holds the session).
	if got := answer(t, ctx, http.MethodPost, d.Nodes[1].URL+"send?seq=1&"+rs.query(), sendBody("x")); got != "503 try again" {
		t.Fatalf("send on the node without Redis: %s", got)
	}
	if got := answer(t, ctx, http.MethodGet, d.Nodes[1].URL+"longpoll?received=0&"+rs.query(), nil); got != "503 try again" {
		t.Fatalf("attach on the node without Redis: %s", got)
	}
	if got := answer(t, ctx, http.MethodPost, d.Nodes[2].URL+"send?seq=1&"+rs.query(), sendBody("x")); got != "204" {
		t.Fatalf("send on the node that took it over: %s", got)
	}
}

// TestDurableStateUnreadable: state that is corrupt, or of another format
// version, ends the session with 1011 `session state unreadable` for its
// client (who starts a new session), and is logged; state that expired
// gives a gone owner's close (4006), and a wrong token an unknown session.
func TestDurableStateUnreadable(t *testing.T) {
	ctx := testContext(t)
	d := startDurable(t, 3)
	version := rawNegotiate(t, ctx, d.Nodes[0].URL)
	corrupt := rawNegotiate(t, ctx, d.Nodes[0].URL)
	expired := rawNegotiate(t, ctx, d.Nodes[0].URL)
	wrong := rawNegotiate(t, ctx, d.Nodes[0].URL)
	wrong.Token = "not the token"
	d.kill(0)
	for _, cmd := range [][]any{
		{"HSET", "tether:{" + version.Session + "}:state", "v", "9"},
		{"HSET", "tether:{" + corrupt.Session + "}:state", "sent", "x"},
		{"DEL", "tether:{" + expired.Session + "}:state"},
	} {
		if err := d.redis.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for rs, want := range map[rawSession]wire.CloseError{
		version: {Code: wire.StatusInternalError, Reason: "session state unreadable"},
		corrupt: {Code: wire.StatusInternalError, Reason: "session state unreadable"},
		expired: {Code: wire.StatusOwnerGone, Reason: "owner gone"},
	} {
		ep, err := lookupUntil(ctx, d.Nodes[1], rs)
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		link, err := ep.Attach(session.AttachOptions{Transport: "longpoll"})
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		b, err := link.Pull(ctx, 0, 1<<20)
		link.Detach()
		if err != nil || b.Close == nil || *b.Close != want {
			t.Fatalf("Pull = %+v, %v; want the close %v", b, err, want)
		}
	}
	if _, err := d.Nodes[2].Node.Store(0).Lookup(wrong.Session, wrong.Token); !errors.Is(err, session.ErrUnknownSession) {
		t.Fatalf("Lookup with a wrong token: %v", err)
	}
}

// presenceInfo is the presence info the durable nodes' echo subscribes
// session id with.
func presenceInfo(id string) []byte { return []byte("user of " + id + " \x00\xff") }

// presenceOf returns the infos that node i's Presence of topic lists for
// session id.
func (d *durable) presenceOf(ctx context.Context, i int, topic, id string) ([]string, error) {
	members, err := d.Nodes[i].Server.Presence(ctx, topic)
	var infos []string
	for _, m := range members {
		if m.Session == id {
			infos = append(infos, string(m.Info))
		}
	}
	return infos, err
}

// TestDurableTopics: a session's topics are restored with it: after its
// owner is killed and another node takes it over, a publish on any node
// reaches it, and another node's presence lists it with the info it was
// subscribed with. (The nodes keep a topic history: without one, a
// takeover closes a subscribed session with 4000 topic gap,
// TestDurableTopicsTakeoverWithoutHistory.)
func TestDurableTopics(t *testing.T) {
	ctx := testContext(t)
	d := startDurableWith(t, 3, &redisstate.HistoryOptions{})
	s := dialDurable(t, ctx, d.URL, "websocket")
	if err := s.Send(ctx, relayText("subscribe")); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "subscribe" {
		t.Fatalf("Recv = %q, %v", m.Data, err)
	}
	if infos, err := d.presenceOf(ctx, 2, "news", s.ID()); err != nil || len(infos) != 1 || infos[0] != string(presenceInfo(s.ID())) {
		t.Fatalf("presence before the takeover: %q, %v", infos, err)
	}
	if err := burst(ctx, s, "m", 300, func() { d.kill(0) }); err != nil {
		t.Fatal(err)
	}
	if !d.wasTakenOver(s.ID()) {
		t.Fatal("not taken over")
	}
	if err := d.Nodes[1].Server.Publish(ctx, "news", relayText("published"), nil); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || string(m.Data) != "published" {
		t.Fatalf("Recv = %q, %v; want the message published after the takeover", m.Data, err)
	}
	// The dead owner's presence entries go with it; the new owner's has
	// the info the session was first subscribed with.
	want := string(presenceInfo(s.ID()))
	for {
		infos, err := d.presenceOf(ctx, 2, "news", s.ID())
		if err == nil && len(infos) == 1 {
			if infos[0] != want {
				t.Fatalf("presence after the takeover lists the session with info %q, want %q", infos[0], want)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("presence after the takeover: %q, %v; want the session once", infos, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
