package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/internal/nginxtest"
)

// clusterConfig is what the command's flags say of the cluster.
type clusterConfig struct {
	bus     string // "redis" or "nats"
	addr    string // nginx's listen address
	nodes   int
	readme  string
	history int
	durable bool // the echo service's sessions are durable, their state in Redis
}

// engine is a bus engine that the command started.
type engine interface {
	URL() string
	Stop()
}

// runCluster starts the engine, the nodes and nginx, prints the URL to out,
// and stops them all, in the reverse order, when ctx ends or a node exits.
func runCluster(ctx context.Context, c clusterConfig, out io.Writer) error {
	if c.nodes < 1 {
		return fmt.Errorf("-nodes %d: want at least one", c.nodes)
	}
	if _, err := nginxtest.Binary(); err != nil {
		return errors.New("nginx not found: run bash scripts/setup.sh")
	}
	conf, err := nginxtest.ReadmeConfig(c.readme)
	if err != nil {
		return fmt.Errorf("%w (run the command from the repository's root, or pass -readme)", err)
	}
	// README's block serves /rt/; the chat's page and Tether server are at
	// / and /chat/rt/, so nginx passes everything.
	if conf, err = nginxtest.Variant(conf, map[string]string{"location /rt/ {": "location / {"}); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tether-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	eng, err := startEngine(c.bus, dir)
	if err != nil {
		return err
	}
	defer eng.Stop()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	exited := make(chan *clustertest.NodeProcess, c.nodes)
	var nodes []*clustertest.NodeProcess
	defer func() { // at once: each waits for its sessions' close frames
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(n.Stop)
		}
		wg.Wait()
	}()
	args := []string{"-history", strconv.Itoa(c.history)}
	if c.durable {
		stateURL := eng.URL()
		if c.bus != "redis" {
			stateDir := filepath.Join(dir, "state")
			if err := os.Mkdir(stateDir, 0o700); err != nil {
				return err
			}
			state, err := startEngine("redis", stateDir)
			if err != nil {
				return err
			}
			defer state.Stop()
			stateURL = state.URL()
		}
		args = append(args, "-state", stateURL)
	}
	var backends []string
	for i := 1; i <= c.nodes; i++ {
		n, err := clustertest.StartNodeProcess(self, eng.URL(), "n"+strconv.Itoa(i), os.Stderr, args...)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		go func() {
			<-n.Done()
			exited <- n
		}()
		backends = append(backends, n.Addr)
		fmt.Fprintln(out, n.Ready)
	}

	ngx, err := nginxtest.Start(conf, c.addr, backends, dir)
	if err != nil {
		return err
	}
	defer ngx.Stop()
	fmt.Fprintf(out, "the chat: http://%s/ (%d nodes over %s, nginx round robin; Ctrl-C stops)\n", ngx.Addr, c.nodes, eng.URL())

	select {
	case <-ctx.Done():
		return nil
	case n := <-exited:
		return fmt.Errorf("node %s exited: %v", n.Name, n.Err())
	}
}

// startEngine starts redis-server or nats-server in dir.
func startEngine(bus, dir string) (engine, error) {
	switch bus {
	case "redis":
		return enginetest.StartRedis(dir) // without redis-server: how to install it
	case "nats":
		return enginetest.StartNATS(dir)
	}
	return nil, fmt.Errorf("-bus %q: want redis or nats", bus)
}
