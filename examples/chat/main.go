// Command chat is a chat room server on labstack/echo/v4 and Tether: pick a
// nickname and a room, see who is there and over which transport each one
// is connected, get the room's last messages when you join, and notices
// when people join and leave. It works the same over every transport: the
// page can force one.
//
//	go run ./examples/chat                # http://127.0.0.1:8080/
//	go run ./examples/chat -addr 127.0.0.1:9000 -history 100
//
// The nickname travels in the X-Nick header of the negotiate request (URL
// encoded); an echo middleware checks it and stores it in echo's context,
// where the Tether server's Authorize hook finds it with tetherecho.Get.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/tetherecho"
)

//go:embed index.html
var page []byte

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
	e, rt := newApp(NewHub(history))
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

// newApp returns the echo app: the page at /, and the Tether server at
// /chat/rt/ behind the nickname middleware.
func newApp(hub *Hub) (*echo.Echo, *tether.Server) {
	rt := tether.NewServer(tether.HandlerFunc(hub.Serve), &tether.Options{
		Authorize: func(r *http.Request) (any, error) {
			nick, _ := tetherecho.Get(r, "nick").(string)
			if nick == "" {
				return nil, &tether.AuthError{Status: http.StatusForbidden, Message: "choose a nickname"}
			}
			return nick, nil
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	hub.Attach(rt)
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Server.ReadHeaderTimeout = 10 * time.Second
	e.Use(middleware.Recover())
	e.GET("/", func(c echo.Context) error { return c.HTMLBlob(http.StatusOK, page) })
	tetherecho.Mount(e.Group("/chat", nickname), "/rt/", rt)
	return e, rt
}

// nickname reads the X-Nick header that the page sends with negotiate and
// keeps a valid one in echo's context as "nick". Later requests of a
// session carry its token instead, and no header.
func nickname(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if raw := c.Request().Header.Get("X-Nick"); raw != "" {
			nick, err := url.QueryUnescape(raw)
			if err != nil || !validNick(nick) {
				return echo.NewHTTPError(http.StatusBadRequest, "a nickname is 1 to 24 printable characters")
			}
			c.Set("nick", strings.TrimSpace(nick))
		}
		return next(c)
	}
}
