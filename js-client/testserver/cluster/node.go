package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/busdial"
	"github.com/tetherkit/tether/internal/hostile"
)

// runNode serves the echo at /rt/ as one node of the cluster on the bus at
// busURL until ctx ends; it prints "node NAME ID ADDR" once it accepts
// connections. With stateURL, the node is durable: its sessions' state is in
// that Redis, with leases of leaseTTL. At the end its sessions close with
// 1001.
func runNode(ctx context.Context, busURL, listen, name, stateURL string, leaseTTL time.Duration, logger *slog.Logger) error {
	if busURL == "" {
		return errNoBusURL
	}
	bus, closeBus, err := busdial.Dial(busURL, logger)
	if err != nil {
		return err
	}
	defer closeBus()
	nopts := &cluster.NodeOptions{Name: name, Logger: logger}
	var h tether.Handler = tether.HandlerFunc(hostile.Handle)
	if stateURL != "" {
		state, closeState, err := busdial.DialState(stateURL, leaseTTL)
		if err != nil {
			return fmt.Errorf("-state: %w", err)
		}
		defer closeState()
		history, closeHistory, err := busdial.DialHistory(stateURL)
		if err != nil {
			return fmt.Errorf("-state: %w", err)
		}
		defer closeHistory()
		nopts.State, nopts.History = state, history
		h = hostile.Callbacks
	}
	node, err := cluster.NewNode(bus, nopts)
	if err != nil {
		return err
	}
	defer node.Close()
	srv := tether.NewServer(h, &tether.Options{Cluster: node, Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("/rt/", srv)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	fmt.Printf("node %s %s %s\n", name, node.ID(), ln.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return hs.Shutdown(sctx)
}
