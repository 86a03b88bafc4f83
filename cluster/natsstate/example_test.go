package natsstate_test

import (
	"context"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/natsbus"
	"github.com/tetherkit/tether/cluster/natsstate"
)

// ExampleNew makes a durable node of a cluster on NATS alone: the bus and
// the session state on one connection, which the application closes after
// the node.
func ExampleNew() {
	nc, err := nats.Connect("nats://127.0.0.1:4222", nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Creates the bucket "tether_state" unless it exists; every node
	// gives the same options.
	state, err := natsstate.New(ctx, nc, &natsstate.Options{LeaseTTL: 5 * time.Second})
	if err != nil {
		log.Fatal(err) // JetStream unreachable, or the bucket made for another window
	}
	bus, err := natsbus.New(nc, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	node, err := cluster.NewNode(bus, &cluster.NodeOptions{State: state})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	// tether.NewServer(handler, &tether.Options{Cluster: node})...
}
