package cluster_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/cluster/brokertest"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// TestBrokerThroughServers: three Servers, each a cluster Node, behind a
// round-robin front; clients on every transport join a room (Server's
// Subscribe on the session's owner) and talk in it (Publish, excluding the
// sender): every client receives every other's messages once, in order,
// whichever node holds it and whichever serves its connection, and every
// node's presence lists every client, until they leave.
func TestBrokerThroughServers(t *testing.T) {
	const (
		clients  = 8
		messages = 200
	)
	ctx := testContext(t)
	var running atomic.Pointer[clustertest.Cluster]
	serverOf := func(s *session.Session) *tether.Server { return running.Load().OwnerOf(s.ID()).Server }
	room := &tether.Callbacks{
		Message: func(s *session.Session, m wire.Message) {
			srv := serverOf(s)
			if string(m.Data) == "join" {
				if err := srv.Subscribe(s.Context(), s, "room", []byte("user-"+s.ID())); err != nil {
					s.Close(wire.StatusInternalError, err.Error())
					return
				}
				s.Send(s.Context(), textMessage("joined"))
				return
			}
			if err := srv.Publish(s.Context(), "room", m, &broker.PublishOptions{Exclude: s.ID()}); err != nil {
				s.Close(wire.StatusInternalError, err.Error())
			}
		},
	}
	c := clustertest.Start(t, 3, room, nil)
	running.Store(c)

	names := transport.Names()
	var ids []string
	var sessions []*sessionOf
	for i := range clients {
		s := dialTransport(t, ctx, c.URL, names[i%len(names)], nil)
		if err := s.Send(ctx, textMessage("join")); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Recv(ctx); err != nil || string(m.Data) != "joined" {
			t.Fatalf("client %d: join answered %q, %v", i, m.Data, err)
		}
		ids = append(ids, s.ID())
		sessions = append(sessions, &sessionOf{i: i, s: s})
	}
	owners := make(map[string]bool)
	for _, id := range ids {
		owners[c.OwnerOf(id).Node.ID()] = true
	}
	if len(owners) != 3 {
		t.Fatalf("the sessions are held by %d nodes, want 3", len(owners))
	}
	var want []string
	for _, id := range ids {
		want = append(want, id+"=user-"+id)
	}
	slices.Sort(want)
	for i, nd := range c.Nodes {
		brokertest.WaitFor(t, fmt.Sprintf("node %d's presence of room", i), func() bool {
			return strings.Join(brokertest.PresenceOf(nd.Node.Broker(), "room"), " ") == strings.Join(want, " ")
		})
	}

	var wg sync.WaitGroup
	for _, cs := range sessions {
		wg.Go(func() {
			for k := range messages {
				if err := cs.s.Send(ctx, textMessage(fmt.Sprintf("%d:%d", cs.i, k))); err != nil {
					t.Errorf("client %d: Send: %v", cs.i, err)
					return
				}
			}
		})
		wg.Go(func() {
			next := make([]int, clients)
			for range (clients - 1) * messages {
				m, err := cs.s.Recv(ctx)
				if err != nil {
					t.Errorf("client %d: Recv: %v", cs.i, err)
					return
				}
				var from, k int
				fmt.Sscanf(string(m.Data), "%d:%d", &from, &k)
				if from == cs.i || k != next[from] {
					t.Errorf("client %d: got %q, want message %d of client %d, none of its own", cs.i, m.Data, next[from], from)
					return
				}
				next[from]++
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d clients on 3 nodes each got the %d messages of the %d others, in order", clients, messages, clients-1)

	for _, cs := range sessions {
		cs.s.Close(wire.StatusNormalClosure, "")
	}
	for i, nd := range c.Nodes {
		brokertest.WaitFor(t, fmt.Sprintf("node %d's presence of room to empty", i), func() bool {
			return len(brokertest.PresenceOf(nd.Node.Broker(), "room")) == 0
		})
	}
}

// sessionOf is a client session and its number in a test.
type sessionOf struct {
	i int
	s *client.Session
}
