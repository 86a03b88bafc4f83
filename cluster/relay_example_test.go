package cluster_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
)

// ExampleNewNode makes a Server one node of a cluster. Every node of the
// cluster does the same with its own connection to a shared bus (here a
// MemoryBus; package redisbus or natsbus in production) and goes behind
// any load balancer, with no sticky sessions.
func ExampleNewNode() {
	bus := cluster.NewMemoryBus() // one per cluster, in one process
	conn := bus.Connect()         // one per node
	defer conn.Close()
	node, err := cluster.NewNode(conn, &cluster.NodeOptions{Name: "node-a"})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	srv := tether.NewServer(tether.HandlerFunc(func(s *session.Session) {
		// The application's handler runs on the node that holds the
		// session, whichever node its requests reach.
	}), &tether.Options{Cluster: node})
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	// Serve mux with an http.Server as on a single node.
	fmt.Println(len(node.ID()), "characters start the id of each session this node holds")
	// Output: 8 characters start the id of each session this node holds
}
