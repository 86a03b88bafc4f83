package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/examples/chat/chatroom"
	"github.com/tetherkit/tether/internal/busdial"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/session"
)

// nodeConfig is what the flags of node mode say.
type nodeConfig struct {
	busURL  string // redis://… or nats://…
	listen  string
	name    string
	history int
	logger  *slog.Logger

	stateURL       string        // redis://…: the echo service's sessions are durable
	leaseTTL       time.Duration // their leases' (0: redisstate.DefaultLeaseTTL)
	ownerGoneAfter time.Duration // cluster.NodeOptions.OwnerGoneAfter (0: its default)
}

// shutdownTimeout bounds a node's shutdown: its sessions' close frames.
const shutdownTimeout = 5 * time.Second

// runNode serves the chat and the echo service as one node of the cluster
// on c.busURL until ctx ends, and prints its ready line to out once it
// accepts connections.
func runNode(ctx context.Context, c nodeConfig, out io.Writer) error {
	if c.busURL == "" {
		return errors.New("-node needs -bus-url")
	}
	bus, err := dialBus(c.busURL, c.logger)
	if err != nil {
		return err
	}
	defer bus.close()
	echoOpts := &cluster.NodeOptions{Name: c.name + "/echo", Logger: c.logger, OwnerGoneAfter: c.ownerGoneAfter}
	if c.stateURL != "" {
		state, closeState, err := busdial.DialState(c.stateURL, c.leaseTTL)
		if err != nil {
			return fmt.Errorf("-state: %w", err)
		}
		defer closeState()
		// The topics' history on the same Redis: a session taken over
		// receives what was published to its topics while no node held
		// it, or closes with 4000 topic gap.
		history, closeHistory, err := busdial.DialHistory(c.stateURL)
		if err != nil {
			return fmt.Errorf("-state: %w", err)
		}
		defer closeHistory()
		echoOpts.State, echoOpts.History = state, history
	}
	echoNode, err := bus.join(echoOpts)
	if err != nil {
		return err
	}
	defer echoNode.close()
	chatNode, err := bus.join(&cluster.NodeOptions{Name: c.name + "/chat", Logger: c.logger, OwnerGoneAfter: c.ownerGoneAfter})
	if err != nil {
		return err
	}
	defer chatNode.close()

	echo := &echoService{}
	echo.srv = tether.NewServer(&tether.Callbacks{Message: echo.message}, echoNode.options(&tether.Options{
		Logger: c.logger,
		// A test's client that reads slower than it is sent to waits
		// for the echoes, rather than losing its session.
		SlowConsumer: session.SlowConsumerBlock,
	}))
	chat, chatSrv := chatroom.NewApp(chatroom.NewHub(c.history), chatNode.options(&tether.Options{Logger: c.logger}))
	mux := http.NewServeMux()
	mux.Handle("/rt/", echo.srv)
	mux.Handle("/", chat)

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintln(out, clustertest.Ready{Name: c.name, Addr: ln.Addr().String(), Echo: echoNode.id, Chat: chatNode.id, PID: os.Getpid()})

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// A durable node hands its sessions over to the other nodes, which
	// take them over at their clients' next request; otherwise its
	// sessions end, and their clients are told to reconnect.
	if err := echoNode.node.Handover(shutdown); err != nil {
		c.logger.Warn("handover", "err", err)
	}
	echo.srv.Shutdown(shutdown) // sessions first
	chatSrv.Shutdown(shutdown)
	hs.Shutdown(shutdown)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
