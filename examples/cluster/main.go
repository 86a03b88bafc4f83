// Command cluster runs the chat of examples/chat on a local cluster of three
// Tether nodes, with nginx in front doing plain round robin, no stickiness:
//
//	go run ./examples/cluster             # Redis; prints the URL (http://127.0.0.1:8080/)
//	go run ./examples/cluster -bus nats   # NATS
//	go run ./examples/cluster -addr 127.0.0.1:9000 -nodes 5
//
// It starts its own redis-server or nats-server on a free loopback port (an
// engine already running on 6379 or 4222 is left alone), then its nodes, each
// a process of its own (the command runs itself with -node), each an HTTP
// server on a loopback port of its own, and nginx with README.md's
// configuration over them (run it from the repository's root, or pass
// -readme). Every request of a session may reach any node: the node that
// does not hold the session relays it over the bus to the one that does.
// Ctrl-C stops everything; the processes it started also end when it is
// killed.
//
// Each node serves the chat (the page at /, its Tether server at /chat/rt/)
// and an echo service at /rt/, which the cluster's tests (internal/clustertest)
// drive: it echoes every message, answers "stream N" with the messages
// "1" .. "N", "subscribe T" by subscribing the session to topic T and
// saying "subscribed T", and "publish T X" by publishing X to topic T.
//
// Node mode, which the tests also use:
//
//	cluster -node -bus-url redis://127.0.0.1:6400 -listen 127.0.0.1:0 -name n1
//
// prints one line once it accepts connections:
//
//	ready name=n1 addr=127.0.0.1:41234 echo=<node id> chat=<node id> pid=<pid>
//
// where echo and chat are the ids of the cluster nodes of its two Tether
// servers, the prefix of the ids of the sessions each creates. SIGTERM or
// SIGINT shuts the node down (its sessions end with 1001).
//
// Durable sessions: with -state redis://host:port, the echo service's node
// keeps its sessions' state in that Redis (package redisstate, key prefix
// "tether"), so that when the node dies another takes its sessions over,
// LeaseTTL (-lease-ttl, default 5s) after its last write, with nothing lost,
// duplicated or reordered; on SIGTERM it hands them over at once
// (cluster.Node.Handover) instead of ending them. -owner-gone-after sets
// cluster.NodeOptions.OwnerGoneAfter. -durable runs the whole cluster so,
// with the state in the bus's Redis (with -bus nats, a Redis of its own):
//
//	go run ./examples/cluster -durable
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherkit/tether/cluster/redisstate"
)

func main() {
	var (
		node    = flag.Bool("node", false, "run one node (what the command starts its nodes with)")
		bus     = flag.String("bus", "redis", "the bus of the cluster: `redis` or nats")
		addr    = flag.String("addr", "127.0.0.1:8080", "the `address` nginx listens on (port 0: a free one)")
		nodes   = flag.Int("nodes", 3, "how many nodes to start")
		readme  = flag.String("readme", "README.md", "the `file` whose ```nginx block configures nginx")
		busURL  = flag.String("bus-url", "", "node mode: the bus's `URL`, redis://host:port or nats://host:port")
		listen  = flag.String("listen", "127.0.0.1:0", "node mode: the `address` the node listens on")
		name    = flag.String("name", "", "node mode: the node's `name` in logs")
		history = flag.Int("history", 50, "messages of a room each node replays to whoever joins it")
		durable = flag.Bool("durable", false, "make the echo service's sessions durable, their state in Redis (the bus's, or one of its own)")
		state   = flag.String("state", "", "node mode: the `URL` of the Redis that keeps the echo service's durable sessions, redis://host:port (none: not durable)")
		ttl     = flag.Duration("lease-ttl", redisstate.DefaultLeaseTTL, "node mode with -state: how long a dead node's sessions wait before another node takes them over")
		gone    = flag.Duration("owner-gone-after", 0, "node mode: cluster.NodeOptions.OwnerGoneAfter (0: its default, the lease TTL with -state)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var err error
	if *node {
		err = runNode(ctx, nodeConfig{busURL: *busURL, listen: *listen, name: *name, history: *history, logger: logger,
			stateURL: *state, leaseTTL: *ttl, ownerGoneAfter: *gone}, os.Stdout)
	} else {
		err = runCluster(ctx, clusterConfig{bus: *bus, addr: *addr, nodes: *nodes, readme: *readme, history: *history, durable: *durable}, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}
