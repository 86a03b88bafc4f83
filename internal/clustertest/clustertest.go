// Package clustertest runs a Tether cluster in one process for tests:
// several servers, each a node of one cluster on a shared
// cluster.MemoryBus (one connection per node) and each on an httptest
// server of its own, behind a front that sends each request, WebSocket
// upgrades included, to the next node in turn, with no stickiness.
//
// It also runs the nodes of examples/cluster as processes of their own
// (StartNodeProcess), on a real redis-server or nats-server: the command
// starts its nodes with it, and this package's tests put three of them
// behind real nginx, kill one, or restart the bus, mid-run.
package clustertest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
)

// Cluster is a running cluster and its front.
type Cluster struct {
	// Bus joins the nodes.
	Bus *cluster.MemoryBus
	// Nodes are the cluster's nodes, in the front's order.
	Nodes []*Node
	// URL is the prefix URL of the front ("http://127.0.0.1:port/rt/").
	URL string

	front *httptest.Server
	route func(r *http.Request) int
	next  atomic.Uint64
	// Requests counts the requests the front has passed on.
	Requests atomic.Int64
}

// Node is one node of a Cluster.
type Node struct {
	// Node is the node, Server the Tether server it makes a node of.
	Node   *cluster.Node
	Server *tether.Server
	// URL is the node's own prefix URL, not through the front.
	URL string

	bus  cluster.Bus
	http *httptest.Server
	down atomic.Bool

	connsMu sync.Mutex
	conns   map[net.Conn]struct{} // open connections, hijacked ones (WebSockets) included; guarded by connsMu

	killOnce sync.Once
}

// Options configure Start. Nil means defaults.
type Options struct {
	// Server is each node's server options; Cluster and Logger are set
	// by Start.
	Server *tether.Options
	// Node is each node's options; Logger is set by Start unless set.
	Node *cluster.NodeOptions
	// Bus, if set, wraps each node's bus connection (to inject faults).
	Bus func(cluster.Bus) cluster.Bus
	// MaxPayload, if not zero, is the MemoryBus's payload limit.
	MaxPayload int
	// State, if set, gives node i (its index in Nodes) its
	// NodeOptions.State, making it durable: each node its own client of
	// the store, so that a test can cut one node's.
	State func(i int) cluster.StateStore
	// History, if set, gives node i its NodeOptions.History: each node
	// its own client of the store, as for State.
	History func(i int) cluster.History
	// Route, if set, picks the node the front sends r to, by its index in
	// Nodes (even one that is down: the front then answers 502), instead
	// of the next one in turn; a negative index leaves r to the turn.
	Route func(r *http.Request) int
}

// Start starts a cluster of n nodes serving h and its front, mounted at
// /rt/. Everything stops when the test ends.
func Start(t testing.TB, n int, h tether.Handler, opts *Options) *Cluster {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	quiet := slog.New(slog.DiscardHandler)
	c := &Cluster{Bus: cluster.NewMemoryBus(), route: o.Route}
	if o.MaxPayload != 0 {
		c.Bus.MaxPayload = o.MaxPayload
	}
	for i := range n {
		bus := c.Bus.Connect()
		if o.Bus != nil {
			bus = o.Bus(bus)
		}
		var nopts cluster.NodeOptions
		if o.Node != nil {
			nopts = *o.Node
		}
		if nopts.Logger == nil {
			nopts.Logger = quiet
		}
		if nopts.Name == "" {
			nopts.Name = "node" + string(rune('0'+i))
		}
		if o.State != nil {
			nopts.State = o.State(i)
		}
		if o.History != nil {
			nopts.History = o.History(i)
		}
		node, err := cluster.NewNode(bus, &nopts)
		if err != nil {
			t.Fatalf("NewNode: %v", err)
		}
		var sopts tether.Options
		if o.Server != nil {
			sopts = *o.Server
		}
		sopts.Cluster = node
		if sopts.Logger == nil {
			sopts.Logger = quiet
		}
		srv := tether.NewServer(h, &sopts)
		mux := http.NewServeMux()
		mux.Handle("/rt/", srv)
		hs := httptest.NewUnstartedServer(mux)
		nd := &Node{Node: node, Server: srv, bus: bus, http: hs, conns: make(map[net.Conn]struct{})}
		hs.Config.ConnState = nd.track
		hs.Start()
		nd.URL = hs.URL + "/rt/"
		c.Nodes = append(c.Nodes, nd)
		t.Cleanup(func() { nd.stop(true) })
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:       c.rewrite,
		FlushInterval: -1,
		ErrorLog:      nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	c.front = httptest.NewServer(proxy)
	c.URL = c.front.URL + "/rt/"
	t.Cleanup(c.front.Close)
	return c
}

// rewrite sends a request to the next node that is up, or where Route
// says.
func (c *Cluster) rewrite(pr *httputil.ProxyRequest) {
	c.Requests.Add(1)
	var nd *Node
	if c.route != nil {
		if i := c.route(pr.In); i >= 0 {
			nd = c.Nodes[i]
		}
	}
	for i := 0; nd == nil && i < len(c.Nodes); i++ {
		nd = c.Nodes[c.next.Add(1)%uint64(len(c.Nodes))]
		if nd.down.Load() {
			nd = nil
		}
	}
	if nd == nil {
		nd = c.Nodes[0]
	}
	u, _ := url.Parse(nd.http.URL)
	pr.SetURL(u)
	pr.Out.Host = pr.In.Host
}

// OwnerOf returns the node that holds the session with id, or nil.
func (c *Cluster) OwnerOf(id string) *Node {
	owner, _ := cluster.OwnerOf(id)
	for _, nd := range c.Nodes {
		if nd.Node.ID() == owner {
			return nd
		}
	}
	return nil
}

// Kill stops node nd as a killed process would look to the others: the
// front stops sending to it, its bus connection closes (its subject has
// no handler any more), its HTTP server drops every connection, and its
// sessions end without a word to their clients.
func (c *Cluster) Kill(nd *Node) { nd.stop(false) }

// track keeps the node's open connections, WebSockets included (httptest
// forgets a connection once hijacked), for Kill.
func (nd *Node) track(conn net.Conn, state http.ConnState) {
	nd.connsMu.Lock()
	defer nd.connsMu.Unlock()
	switch state {
	case http.StateNew:
		nd.conns[conn] = struct{}{}
	case http.StateClosed:
		delete(nd.conns, conn)
	}
}

// closeConns closes every connection the node has open.
func (nd *Node) closeConns() {
	nd.connsMu.Lock()
	defer nd.connsMu.Unlock()
	for conn := range nd.conns {
		conn.Close()
		delete(nd.conns, conn)
	}
}

func (nd *Node) stop(graceful bool) {
	nd.killOnce.Do(func() {
		nd.down.Store(true)
		nd.bus.Close()
		nd.Node.Close()
		if !graceful {
			nd.closeConns()
		}
		nd.http.CloseClientConnections()
		nd.http.Close()
		if graceful {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			nd.Server.Shutdown(ctx)
		}
		nd.Server.Close()
	})
}
