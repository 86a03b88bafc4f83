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
	"github.com/tetherkit/tether/examples/chat/chatroom"
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
	echoNode, err := bus.join(c.name+"/echo", c.logger)
	if err != nil {
		return err
	}
	defer echoNode.close()
	chatNode, err := bus.join(c.name+"/chat", c.logger)
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
	echo.srv.Shutdown(shutdown) // sessions first: their clients are told to reconnect
	chatSrv.Shutdown(shutdown)
	hs.Shutdown(shutdown)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
