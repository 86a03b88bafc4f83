package main

import (
	"fmt"
	"log/slog"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/busdial"
)

// busConn is a node's connection to the bus, which its cluster nodes
// share.
type busConn struct {
	bus   cluster.Bus
	close func()
}

// dialBus connects to the bus at url: redis://host:port through go-redis
// (its default timeouts and retries suit a cluster), nats://host:port
// through nats.go, which reconnects for as long as the node runs.
func dialBus(url string, logger *slog.Logger) (*busConn, error) {
	bus, closeBus, err := busdial.Dial(url, logger)
	if err != nil {
		return nil, fmt.Errorf("-bus-url: %w", err)
	}
	return &busConn{bus: bus, close: closeBus}, nil
}

// member is one Tether server's node of the cluster.
type member struct {
	id   string
	node *cluster.Node
}

// join makes a cluster node on the bus.
func (b *busConn) join(opts *cluster.NodeOptions) (*member, error) {
	n, err := cluster.NewNode(b.bus, opts)
	if err != nil {
		return nil, err
	}
	return &member{id: n.ID(), node: n}, nil
}

// options returns o with the cluster node set.
func (m *member) options(o *tether.Options) *tether.Options {
	o.Cluster = m.node
	return o
}

func (m *member) close() { m.node.Close() }
