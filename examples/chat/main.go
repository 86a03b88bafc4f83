// Command chat is a chat room server on labstack/echo/v4 and Tether: pick a
// nickname and a room, see who is there and over which transport each one
// is connected, get the room's last messages when you join, and notices
// when people join and leave. It works the same over every transport: the
// page can force one.
//
//	go run ./examples/chat                # http://127.0.0.1:8080/
//	go run ./examples/chat -addr 127.0.0.1:9000 -history 100
//
// The app is package chatroom, which examples/cluster serves on every node
// of a cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tetherkit/tether/examples/chat/chatroom"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`address` to listen on")
	history := flag.Int("history", 50, "messages of a room replayed to whoever joins it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *history, func(url string) { fmt.Println("listening " + url) }); err != nil {
		slog.Error("chat", "err", err)
		os.Exit(1)
	}
}

// run serves the chat on addr until ctx ends. It calls ready with the
// page's URL once it accepts connections.
func run(ctx context.Context, addr string, history int, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	e, rt := chatroom.NewApp(chatroom.NewHub(history), nil)
	e.Listener = ln
	errc := make(chan error, 1)
	go func() { errc <- e.Start("") }()
	ready("http://" + ln.Addr().String() + "/")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt.Shutdown(shutdown) // sessions first: their clients are told to reconnect
	e.Shutdown(shutdown)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
