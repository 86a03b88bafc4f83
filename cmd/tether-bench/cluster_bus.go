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
	bus, closeBus, err := busdial.Dial(url)
	if err != nil {
		return nil, nil, err
	}
	n, err := cluster.NewNode(bus, &cluster.NodeOptions{
		Name:   name,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		closeBus()
		return nil, nil, err
	}
	return n, func() { n.Close(); closeBus() }, nil
}
