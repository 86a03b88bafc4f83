package main

import (
	"log/slog"
	"os"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/busdial"
)

// joinCluster connects to the bus at url and makes a cluster node on it,
// called name in its logs (warnings go to standard error), durable when
// stateURL is not empty: its sessions' state is kept in the Redis there,
// with redisstate's default lease. stop closes the node, then the bus and
// the state's client.
func joinCluster(url, name, stateURL string) (node tether.Cluster, stop func(), err error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, closeBus, err := busdial.Dial(url, logger)
	if err != nil {
		return nil, nil, err
	}
	opts := &cluster.NodeOptions{Name: name, Logger: logger}
	closeState := func() {}
	if stateURL != "" {
		if opts.State, closeState, err = busdial.DialState(stateURL, 0); err != nil {
			closeBus()
			return nil, nil, err
		}
	}
	n, err := cluster.NewNode(bus, opts)
	if err != nil {
		closeState()
		closeBus()
		return nil, nil, err
	}
	return n, func() { n.Close(); closeBus(); closeState() }, nil
}
