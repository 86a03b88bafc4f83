package main

import (
	"log/slog"
	"os"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/busdial"
)

// joinCluster connects to the bus at url and makes a cluster node on it,
// called name in its logs (warnings go to standard error). stop closes the
// node, then the bus.
func joinCluster(url, name string) (node tether.Cluster, stop func(), err error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, closeBus, err := busdial.Dial(url, logger)
	if err != nil {
		return nil, nil, err
	}
	n, err := cluster.NewNode(bus, &cluster.NodeOptions{Name: name, Logger: logger})
	if err != nil {
		closeBus()
		return nil, nil, err
	}
	return n, func() { n.Close(); closeBus() }, nil
}
