package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// rawSession is a negotiate answer, read raw.
type rawSession struct {
	Session, Token  string
	MaxMessageBytes int
}

func (s rawSession) query() string {
	return "session=" + url.QueryEscape(s.Session) + "&token=" + url.QueryEscape(s.Token)
}

// answer is an HTTP answer as the tests compare it: "404 unknown session".
func answer(t *testing.T, ctx context.Context, method, u string, body []byte) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, b))
}

func rawNegotiate(t *testing.T, ctx context.Context, base string) rawSession {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"negotiate?v=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s rawSession
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %s, %v", resp.Status, err)
	}
	return s
}

// sendBody is a send body holding one text message.
func sendBody(m string) []byte { return wire.AppendBatchFrame(nil, append([]byte{'m'}, m...)) }

// TestRelayBadInput: each request a node receives for a session it does not
// hold, that cannot be served, gets the answer PROTOCOL.md documents
// (sections 9 and 11), the same on the owner and on any other node, while
// a session relayed through the same nodes goes on with its counts exact.
func TestRelayBadInput(t *testing.T) {
	ctx := testContext(t)
	c := clustertest.Start(t, 3, relayEcho, &clustertest.Options{
		Node: &cluster.NodeOptions{OwnerGoneAfter: 300 * time.Millisecond},
	})
	// A session exchanging messages all along, through the front; the
	// node killed below is not its owner.
	var attemptsMu sync.Mutex
	var attempts []string // what failed for the busy session, for the failure message
	busy := dialTransport(t, ctx, c.URL, "longpoll", &client.Options{OnError: func(e *client.AttemptError) {
		attemptsMu.Lock()
		defer attemptsMu.Unlock()
		attempts = append(attempts, fmt.Sprintf("%s %s %d %v", e.Request, e.Transport, e.Status, e.Err))
	}})
	var owner, other, victim *clustertest.Node
	for _, nd := range c.Nodes {
		switch {
		case nd == c.OwnerOf(busy.ID()):
			owner = nd
		case victim == nil:
			victim = nd
		default:
			other = nd
		}
	}
	stop := make(chan struct{})
	busyErr := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				busyErr <- nil
				return
			default:
			}
			if err := exchangeErr(ctx, busy, fmt.Sprintf("busy%d.", i), 20); err != nil {
				busyErr <- err
				return
			}
		}
	}()

	s := rawNegotiate(t, ctx, owner.URL)
	gone := rawNegotiate(t, ctx, victim.URL)
	c.Kill(victim)

	forged := func(id string) rawSession { return rawSession{Session: id, Token: s.Token} }
	attach := func(base string, s rawSession) string {
		return answer(t, ctx, http.MethodGet, base+"longpoll?"+s.query()+"&received=0", nil)
	}
	send := func(base string, s rawSession) string {
		return answer(t, ctx, http.MethodPost, base+"send?"+s.query()+"&seq=1", sendBody("x"))
	}
	wrong := rawSession{Session: s.Session, Token: strings.Repeat("A", len(s.Token))}
	_, random, _ := strings.Cut(s.Session, ".")
	rows := []struct {
		name, attach, send string
		s                  rawSession
	}{
		{"wrong token", "404 unknown session", "404 unknown session", wrong},
		{"empty token", "404 unknown session", "404 unknown session", rawSession{Session: s.Session}},
		{"unknown session of a live node", "404 unknown session", "404 unknown session", forged(owner.Node.ID() + ".AAAAAAAAAAAAAAAAAAAAAA")},
		{"forged owner (no such node)", "200 16:c4006 owner gone", "503 try again", forged("ZZZZZZZZ." + random)},
		{"session of a node that is gone", "200 16:c4006 owner gone", "503 try again", gone},
		{"owner not a node id", "404 unknown session", "404 unknown session", forged("abc." + random)},
		{"owner of 9 characters", "404 unknown session", "404 unknown session", forged("ZZZZZZZZZ." + random)},
		{"owner with a bad character", "404 unknown session", "404 unknown session", forged("ZZZZ+ZZZ." + random)},
		{"id without owner", "404 unknown session", "404 unknown session", forged(random)},
		{"empty id", "404 unknown session", "404 unknown session", forged("")},
		{"id of 1000 bytes", "404 unknown session", "404 unknown session", forged(owner.Node.ID() + "." + strings.Repeat("A", 1000))},
		{"token of 1000 bytes", "404 unknown session", "404 unknown session", rawSession{Session: s.Session, Token: strings.Repeat("A", 1000)}},
	}
	for _, r := range rows {
		for _, nd := range []*clustertest.Node{owner, other} {
			// A probe (PROTOCOL.md 10.1) is answered as an attach is:
			// 404 for an unknown session, the start of a stream for one
			// whose owner is gone (its attach brings the close frame).
			probe := answer(t, ctx, http.MethodGet, nd.URL+"sse?"+r.s.query()+"&received=0&probe=1", nil)
			if want := r.attach[:3]; probe[:3] != want {
				t.Errorf("%s: probe on node %s: %q, want %s", r.name, nd.Node.ID(), probe, want)
			}
			if got := attach(nd.URL, r.s); got != r.attach {
				t.Errorf("%s: attach on node %s: %q, want %q", r.name, nd.Node.ID(), got, r.attach)
			}
			if got := send(nd.URL, r.s); got != r.send {
				t.Errorf("%s: send on node %s: %q, want %q", r.name, nd.Node.ID(), got, r.send)
			}
		}
	}
	// The session itself answers on every node alike.
	for _, nd := range []*clustertest.Node{owner, other} {
		if got := send(nd.URL, s); got != "204" {
			t.Errorf("send of the live session on a node: %q, want 204", got)
		}
	}
	// A session that ended answers 404 everywhere.
	answer(t, ctx, http.MethodPost, owner.URL+"send?"+s.query(), wire.AppendBatchFrame(nil, wire.AppendClose(nil, wire.CloseError{Code: 1000})))
	for _, nd := range []*clustertest.Node{owner, other} {
		if got := send(nd.URL, s); got != "404 unknown session" {
			t.Errorf("send of a session that ended: %q, want 404 unknown session", got)
		}
	}
	close(stop)
	if err := <-busyErr; err != nil {
		attemptsMu.Lock()
		defer attemptsMu.Unlock()
		t.Fatalf("the session exchanging meanwhile: %v (failed attempts: %q)", err, attempts)
	}
}

// switchBus is a bus connection that can be cut off: while down, Request
// and Publish fail as a Bus whose engine cannot be reached does.
type switchBus struct {
	cluster.Bus
	down atomic.Bool
	// deaf makes every Request find no handler, as while the other nodes
	// have not subscribed again after the engine restarted.
	deaf atomic.Bool
}

func (b *switchBus) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if b.down.Load() {
		return nil, fmt.Errorf("%w: switched off", cluster.ErrUnavailable)
	}
	if b.deaf.Load() {
		return nil, cluster.ErrNoResponders
	}
	return b.Bus.Request(ctx, subject, data)
}

func (b *switchBus) Publish(ctx context.Context, subject string, data []byte) error {
	if b.down.Load() {
		return fmt.Errorf("%w: switched off", cluster.ErrUnavailable)
	}
	return b.Bus.Publish(ctx, subject, data)
}

// ownerAndRelay starts three nodes on switchable buses, with a front that
// sends negotiate to the first node and every other request to the
// second: every session is held by the first and served by the second.
func ownerAndRelay(t *testing.T, h tether.Handler, opts *clustertest.Options) (*clustertest.Cluster, []*switchBus) {
	var buses []*switchBus
	var o clustertest.Options
	if opts != nil {
		o = *opts
	}
	o.Bus = func(b cluster.Bus) cluster.Bus {
		sb := &switchBus{Bus: b}
		buses = append(buses, sb)
		return sb
	}
	o.Route = func(r *http.Request) int {
		if path.Base(r.URL.Path) == "negotiate" {
			return 0
		}
		return 1
	}
	return clustertest.Start(t, 3, h, &o), buses
}

// TestBusDown: while the bus is down for the node that serves a session
// held by another, its attaches and sends answer 503 try again, nothing
// is decided, and the session goes on with nothing lost once the bus is
// back; on every transport. A session served by its owner is unaffected.
func TestBusDown(t *testing.T) {
	for _, name := range transport.Names() {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			c, buses := ownerAndRelay(t, relayEcho, nil)
			owner, relay := c.Nodes[0], c.Nodes[1]
			s := dialTransport(t, ctx, c.URL, name, nil)
			exchange(t, ctx, s, "before", 200)
			direct := rawNegotiate(t, ctx, owner.URL)

			buses[1].down.Store(true)
			raw := rawNegotiate(t, ctx, owner.URL)
			if got := answer(t, ctx, http.MethodGet, relay.URL+"longpoll?"+raw.query()+"&received=0", nil); got != "503 try again" {
				t.Errorf("attach through a node whose bus is down: %q, want 503 try again", got)
			}
			if got := answer(t, ctx, http.MethodPost, relay.URL+"send?"+raw.query()+"&seq=1", sendBody("held")); got != "503 try again" {
				t.Errorf("send through a node whose bus is down: %q, want 503 try again", got)
			}
			// On its owner, a session does not need the bus.
			if got := answer(t, ctx, http.MethodPost, owner.URL+"send?"+direct.query()+"&seq=1", sendBody("direct")); got != "204" {
				t.Errorf("send on the owner while the bus is down: %q, want 204", got)
			}
			// The client's exchange goes on through the outage.
			back := time.AfterFunc(500*time.Millisecond, func() { buses[1].down.Store(false) })
			defer back.Stop()
			exchange(t, ctx, s, "during", 500)
			exchange(t, ctx, s, "after", 200)
			if got := answer(t, ctx, http.MethodPost, relay.URL+"send?"+raw.query()+"&seq=1", sendBody("held")); got != "204" {
				t.Errorf("send retried once the bus is back: %q, want 204", got)
			}
			if got := answer(t, ctx, http.MethodGet, relay.URL+"longpoll?"+raw.query()+"&received=0", nil); got != "200 5:mheld" {
				t.Errorf("poll once the bus is back: %q, want the echo", got)
			}
		})
	}
}

// TestRelayedLinkOfDeadNode: when the node that serves a connection of a
// session held by another dies, the owner detaches that connection once
// nobody has pulled from it for LinkIdleTimeout, and the session's resume
// window starts, as when a connection it served itself ends.
func TestRelayedLinkOfDeadNode(t *testing.T) {
	ctx := testContext(t)
	events := make(chan session.ConnectionEvent, 16)
	h := &tether.Callbacks{
		Open: func(s *session.Session) {
			s.OnConnection(func(e session.ConnectionEvent) { events <- e })
		},
		Message: relayEcho.Message,
	}
	c, _ := ownerAndRelay(t, h, &clustertest.Options{
		Server: &tether.Options{HeartbeatInterval: time.Second},
		Node:   &cluster.NodeOptions{LinkIdleTimeout: 500 * time.Millisecond},
	})
	s := dialTransport(t, ctx, c.URL, "sse", nil)
	exchange(t, ctx, s, "m", 10)
	for e := range events {
		if e.Transport == "sse" {
			break
		}
	}
	c.Kill(c.Nodes[1])
	for {
		select {
		case e := <-events:
			if e.Transport == "" && e.Previous == "sse" {
				return
			}
		case <-ctx.Done():
			t.Fatal("the owner never detached the connection of the dead node")
		}
	}
}

// TestOwnerJudgedGoneAnswersAgain: an owner judged gone by a node (no
// handler for its subject for OwnerGoneAfter, as when the bus engine takes
// long to restart) that answers again is taken back: its sessions end with
// 4006 meanwhile, and a new session the node serves for it works once the
// node has asked again (at most OwnerGoneAfter after the verdict; until
// then a session it serves for that owner ends with 4006 at once).
func TestOwnerJudgedGoneAnswersAgain(t *testing.T) {
	ctx := testContext(t)
	c, buses := ownerAndRelay(t, relayEcho, &clustertest.Options{
		Node: &cluster.NodeOptions{OwnerGoneAfter: 300 * time.Millisecond},
	})
	once := &client.Options{DisableReconnect: true}
	s := dialTransport(t, ctx, c.URL, "sse", once)
	exchange(t, ctx, s, "before", 50)
	buses[1].deaf.Store(true)
	if _, err := s.Recv(ctx); wire.CloseStatus(err) != wire.StatusOwnerGone {
		t.Fatalf("Recv once the owner is judged gone: %v, want close 4006", err)
	}
	buses[1].deaf.Store(false)
	for attempt := 1; ; attempt++ {
		s, err := client.Dial(ctx, c.URL, &client.Options{Transports: []string{"sse"}, DisableReconnect: true})
		if err == nil {
			err = exchangeErr(ctx, s, "after", 50)
			s.Close(wire.StatusNormalClosure, "")
		}
		if err == nil {
			t.Logf("a new session works after %d attempts", attempt)
			return
		}
		if wire.CloseStatus(err) != wire.StatusOwnerGone {
			t.Fatalf("attempt %d: %v, want success or close 4006", attempt, err)
		}
	}
}

// TestClosedNodeAnswers503: a node that has closed (Node.Close) while its
// server still takes requests cannot reach the owners of sessions: it
// answers 503 try again, never 404, so no client takes its session for
// unknown.
func TestClosedNodeAnswers503(t *testing.T) {
	ctx := testContext(t)
	c := clustertest.Start(t, 2, relayEcho, nil)
	s := rawNegotiate(t, ctx, c.Nodes[0].URL)
	if got := answer(t, ctx, http.MethodPost, c.Nodes[1].URL+"send?"+s.query()+"&seq=1", sendBody("x")); got != "204" {
		t.Fatalf("send through the other node: %q, want 204", got)
	}
	c.Nodes[1].Node.Close()
	for _, u := range []string{"longpoll?" + s.query() + "&received=0", "send?" + s.query() + "&seq=2"} {
		method := http.MethodGet
		if strings.HasPrefix(u, "send") {
			method = http.MethodPost
		}
		if got := answer(t, ctx, method, c.Nodes[1].URL+u, sendBody("y")); got != "503 try again" {
			t.Errorf("%s %s on a closed node: %q, want 503 try again", method, u, got)
		}
	}
}

// lossyBus loses the reply of one request in every `every`, after the
// handler ran: the bus is at most once.
type lossyBus struct {
	cluster.Bus
	every int64
	count *atomic.Int64
}

func (b *lossyBus) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	reply, err := b.Bus.Request(ctx, subject, data)
	if err == nil && b.count.Add(1)%b.every == 0 {
		return nil, context.DeadlineExceeded
	}
	return reply, err
}

// TestRelayLosesReplies: with a bus that loses one reply in 7 (a pull
// whose batch vanishes, a delivery answered for nothing, an attach whose
// link nobody will pull), the Go client on each transport still exchanges
// every message exactly once and in order: a lost pull ends the
// connection, and the owner replays from the client's count; a delivery
// is sent again and its duplicates dropped.
func TestRelayLosesReplies(t *testing.T) {
	for _, name := range transport.Names() {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			var lost, turn atomic.Int64
			c := clustertest.Start(t, 3, relayEcho, &clustertest.Options{
				Bus:  func(b cluster.Bus) cluster.Bus { return &lossyBus{Bus: b, every: 7, count: &lost} },
				Node: &cluster.NodeOptions{LinkIdleTimeout: 2 * time.Second},
				// Sessions are held by the first node and every other
				// request goes to the two others: all is relayed.
				Route: func(r *http.Request) int {
					if path.Base(r.URL.Path) == "negotiate" {
						return 0
					}
					return 1 + int(turn.Add(1)%2)
				},
			})
			s := dialTransport(t, ctx, c.URL, name, nil)
			for round := range 40 {
				exchange(t, ctx, s, fmt.Sprintf("r%d.", round), 30)
			}
			if n := lost.Load() / 7; n == 0 {
				t.Fatalf("no reply was lost in %d requests", lost.Load())
			} else {
				t.Logf("%s: %d replies lost of %d requests", name, n, lost.Load())
			}
		})
	}
}
