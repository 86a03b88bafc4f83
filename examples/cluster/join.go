package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/natsbus"
	"github.com/tetherkit/tether/cluster/redisbus"
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
	switch {
	case strings.HasPrefix(url, "redis://"):
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, err
		}
		client := redis.NewClient(opts)
		b, err := redisbus.New(client, &redisbus.Options{Logger: logger})
		if err != nil {
			client.Close()
			return nil, err
		}
		return &busConn{bus: b, close: func() { b.Close(); client.Close() }}, nil
	case strings.HasPrefix(url, "nats://"):
		nc, err := nats.Connect(url,
			nats.MaxReconnects(-1), // a node reconnects for as long as it runs
			nats.ReconnectWait(500*time.Millisecond),
			nats.RetryOnFailedConnect(true),
		)
		if err != nil {
			return nil, err
		}
		b, err := natsbus.New(nc, &natsbus.Options{Logger: logger})
		if err != nil {
			nc.Close()
			return nil, err
		}
		return &busConn{bus: b, close: func() { b.Close(); nc.Close() }}, nil
	}
	return nil, fmt.Errorf("-bus-url %q: want redis://host:port or nats://host:port", url)
}

// member is one Tether server's node of the cluster.
type member struct {
	id   string
	node *cluster.Node
}

// join makes a cluster node on the bus, called name in logs.
func (b *busConn) join(name string, logger *slog.Logger) (*member, error) {
	n, err := cluster.NewNode(b.bus, &cluster.NodeOptions{Name: name, Logger: logger})
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
