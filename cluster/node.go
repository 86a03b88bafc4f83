package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/session"
)

// NodeOptions configure a Node. A nil *NodeOptions means every default;
// NewNode copies the struct.
type NodeOptions struct {
	// Name names the node in logs and metrics only; the id that session
	// ids carry is made by NewNode. Default: the node's id.
	Name string

	// Logger receives the node's logs: a node judged gone, a malformed
	// relay message (Warn). Default: slog's default logger.
	Logger *slog.Logger

	// OwnerGoneAfter is how long the subject of a session's owner must
	// have had no handler, in every request and ping in a row, before the
	// owner is judged gone: its sessions then end with StatusOwnerGone
	// (4006) for their clients, or, on a durable node (State), are taken
	// over once their lease has lapsed (until then a request for one is
	// answered 503, and the client tries again). A bus engine that restarts has no handler
	// for a subject until the node subscribes again, so it must outlast
	// that. A node judged gone that answers again (its connection to the
	// engine took longer to come back) is taken back: a node asks it again
	// at most OwnerGoneAfter after its verdict. Every node of a cluster
	// should use the same. Default 5s, or State's LeaseTTL on a durable
	// node: a session's takeover waits for the longer of the two.
	OwnerGoneAfter time.Duration

	// RequestTimeout bounds each request to another node beyond the wait
	// it asks of it: a reply that does not come in time counts as lost
	// (the bus is at most once); on a durable node it also bounds each
	// WriteAll of its sessions' coalesced writes, and each Release and
	// Delete. Default 5s.
	RequestTimeout time.Duration

	// State, if not nil, makes the node durable: it keeps the recoverable
	// state of each session it creates in State (package redisstate's
	// *Store keeps it in Redis), written through before the client learns
	// of any change, so that another node takes the session over when
	// this one dies and the session goes on with nothing lost,
	// duplicated or reordered. Every node of a cluster should share the
	// same State, or none. See the package doc's "Durable sessions".
	// Default: none; a session ends with its node (StatusOwnerGone).
	State StateStore

	// LinkIdleTimeout is how long a connection another node serves for a
	// session held here may go without a pull before this node detaches
	// it, as when a connection ends: the node that served it died, or lost
	// its detach. It must outlast the longest write a transport makes to
	// its client (a server's WriteTimeout). Default 1 minute.
	LinkIdleTimeout time.Duration

	// History, if set, is the node's Broker's history of topics (see
	// BrokerOptions.History and Broker): give every node the same one,
	// such as a redisstate.TopicHistory on the cluster's Redis. Default:
	// none.
	History History
}

func (o *NodeOptions) withDefaults() NodeOptions {
	var c NodeOptions
	if o != nil {
		c = *o
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.OwnerGoneAfter <= 0 {
		c.OwnerGoneAfter = 5 * time.Second
		if c.State != nil {
			c.OwnerGoneAfter = c.State.LeaseTTL()
		}
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.LinkIdleTimeout <= 0 {
		c.LinkIdleTimeout = time.Minute
	}
	return c
}

// Node makes a tether.Server one node of a cluster: set it as the server's
// Options.Cluster. It gives the server its Store, which finds the sessions
// of every node, and its Broker. The sessions the server creates carry the
// node's id (ID) in theirs, `<node id>.<22 random characters>`, so that any
// node tells their owner from the id alone, with no lookup; a balancer in
// front may hash on the session parameter to send a session's requests to
// its owner, which saves the relay, but nothing requires it.
//
// A request for a session of another node is relayed over the bus: the
// owner keeps the session and runs the application's handler, and this
// node serves the connection. Each call (attach, pull, deliver,
// acknowledge, detach, and the client's close) is one request on the
// owner's subject, `tether.node.<id>`, carrying the session's id and token,
// which the owner checks each time. Upstream, a send is answered once the
// owner's Deliver has returned; downstream, the connection carries the
// owner's frames with the session's numbering, pulled one batch at a time,
// so a message the bus loses is replayed when the client attaches again.
//
// What crosses the bus for a relayed session: a send is one request per
// bus payload of messages, after a lookup that the node then remembers for
// two seconds; a downstream batch is one pull and its reply; a long poll
// is an attach, a pull and a detach. Each request carries the session's id
// and token and some 20 bytes more, each message its data and 2 to 11
// bytes. An echo of one 64-byte message costs 2 requests and about 285
// bytes on a WebSocket, 3 and 350 on sse or streaming, 5 and 505 on long
// polling (BenchmarkRelayEcho).
//
// A Node serves one Server. All methods may be called concurrently.
type Node struct {
	id       string
	bus      Bus
	opts     NodeOptions
	log      *slog.Logger
	maxBatch int // the most bytes of messages one relay message carries
	served   Subscription
	broker   *Broker

	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	asyncMu sync.Mutex
	closed  bool           // guarded by asyncMu
	wg      sync.WaitGroup // goroutines of the node's; Add only under asyncMu while !closed

	storeOnce sync.Once
	store     *store
	public    session.Store                       // store, or a durableStore on a durable node
	local     atomic.Pointer[session.MemoryStore] // set by Store

	peersMu  sync.Mutex
	peers    map[string]*peer // guarded by peersMu
	suspects int              // peers suspected now; guarded by peersMu
	gone     []string         // ids of gone peers, oldest first; guarded by peersMu

	lookups lookupCache

	linksMu  sync.Mutex
	links    map[uint64]*ownerLink // relayed links of the sessions held here; guarded by linksMu
	nextLink uint64                // guarded by linksMu

	malformed atomic.Uint64

	durable *durable // nil unless NodeOptions.State is set
}

// minPayload is the smallest Bus.MaxPayload a Node works with.
const minPayload = 4 << 10

// NewNode makes a node on bus with a fresh id, and starts answering the
// requests of other nodes for the sessions it will hold. The node does not
// own bus: Close leaves it open. It returns an error when bus's
// MaxPayload is under 4 KiB or when serving the node's subject fails.
func NewNode(bus Bus, opts *NodeOptions) (*Node, error) {
	if bus == nil {
		return nil, errors.New("cluster: NewNode with a nil Bus")
	}
	o := opts.withDefaults()
	if bus.MaxPayload() < minPayload {
		return nil, fmt.Errorf("cluster: the bus's payload limit, %d bytes, is under %d", bus.MaxPayload(), minPayload)
	}
	n := &Node{
		id:       newNodeID(),
		bus:      bus,
		opts:     o,
		maxBatch: bus.MaxPayload() - relayHeaderRoom,
		peers:    make(map[string]*peer),
		links:    make(map[uint64]*ownerLink),
	}
	if n.opts.Name == "" {
		n.opts.Name = n.id
	}
	n.log = o.Logger.With("node", n.opts.Name)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	served, err := bus.Serve(n.ctx, nodeSubject(n.id), n.handle)
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("cluster: serving %s: %w", nodeSubject(n.id), err)
	}
	n.served = served
	b, err := NewBroker(bus, n.id, &BrokerOptions{MaxMessageBytes: n.MaxMessageBytes(), Logger: o.Logger, History: o.History})
	if err != nil {
		served.Close()
		n.cancel()
		return nil, err
	}
	n.broker = b
	if o.State != nil {
		n.durable = newDurable(n, o.State)
	}
	n.goAsync(n.reapLinks)
	return n, nil
}

// ID returns the node's id: 8 base64url characters that start the id of
// every session the node holds, and name its bus subject.
func (n *Node) ID() string { return n.id }

// Store returns the node's session.Store, for the Server the node belongs
// to (tether.Options.Cluster sets it): it keeps the sessions this node
// holds, at most maxSessions of them (no bound when maxSessions <= 0), and
// finds the sessions of the other nodes through the bus. On a durable node
// (NodeOptions.State) it is a session.DurableStore, and takes over the
// sessions of gone nodes. Store makes it on the first call; later calls
// return the same one.
func (n *Node) Store(maxSessions int) session.Store {
	n.storeOnce.Do(func() {
		local := session.NewMemoryStore(maxSessions)
		n.store = &store{n: n, local: local}
		n.local.Store(local)
		n.public = n.store
		if n.durable != nil {
			// The server makes its sessions journaled and gives the
			// store its restore function.
			n.public = &durableStore{n.store}
		}
	})
	return n.public
}

// localStore returns the sessions this node holds, or nil before Store.
func (n *Node) localStore() *session.MemoryStore { return n.local.Load() }

// Broker returns the node's broker.Broker, for the Server the node belongs
// to: a publish reaches the subscribers of every node; presence lists them
// all (see Broker).
func (n *Node) Broker() broker.Broker { return n.broker }

// MaxMessageBytes returns the largest message the node can relay in one
// bus message: the bus's payload limit less the room a relay message
// takes besides its data. A server that is a node of a cluster offers no
// larger message limit (tether.Options.Cluster).
func (n *Node) MaxMessageBytes() int { return n.maxBatch - messageRoom }

// Malformed returns how many relay messages the node has dropped as
// malformed, requests and replies: each was logged at Warn.
func (n *Node) Malformed() uint64 { return n.malformed.Load() }

// malformedMessage logs and counts a relay message that could not be
// parsed.
func (n *Node) malformedMessage(what string, err error) {
	n.malformed.Add(1)
	n.log.Warn("tether: malformed relay message", "what", what, "err", err)
}

// goAsync runs fn on a goroutine the node waits for at Close, and reports
// whether it did: not once the node is closed.
func (n *Node) goAsync(fn func()) bool {
	n.asyncMu.Lock()
	defer n.asyncMu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
	return true
}

// Close stops the node: it no longer answers other nodes (for them, its
// sessions' owner is gone), the connections it serves for sessions of
// other nodes end, and the connections other nodes serve for its sessions
// are detached, and its Broker closes. It does not close the bus, nor the
// sessions the node holds (the Server's Close does). Call it after the
// Server's Shutdown: the close frames of the node's sessions (1001, which
// makes clients reconnect) then reach the clients that other nodes serve;
// sessions still open when the node closes end with 4006 for their
// clients. On a durable node, Close first hands over the sessions still
// held here, as Handover does (a node that shuts down gracefully calls
// Handover before the Server's Shutdown). Close waits for the node's
// goroutines; a second call does nothing.
func (n *Node) Close() error {
	n.asyncMu.Lock()
	if n.closed {
		n.asyncMu.Unlock()
		return nil
	}
	n.closed = true
	n.asyncMu.Unlock()
	if d := n.durable; d != nil {
		// What Handover left, or all of it: the leases are released
		// and the sessions still held here end without a close frame.
		ctx, cancel := context.WithTimeout(context.Background(), n.opts.RequestTimeout)
		if err := d.handOver(ctx); err != nil {
			n.log.Warn("tether: leases not released", "err", err)
		}
		cancel()
		d.renewer.Close()
	}
	n.broker.Close()
	err := n.served.Close()
	n.cancel()
	n.detachAll()
	n.wg.Wait()
	return err
}
