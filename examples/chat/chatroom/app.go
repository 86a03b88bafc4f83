// Package chatroom is the chat of examples/chat: an echo/v4 app that serves
// the page at / and a Tether server at /chat/rt/, on which a room is a
// topic and its members the topic's presence. Command chat serves it on one
// server; command cluster (examples/cluster) serves it on every node of a
// cluster.
//
// The nickname travels in the X-Nick header of the negotiate request (URL
// encoded); an echo middleware checks it and stores it in echo's context,
// where the Tether server's Authorize hook finds it with tetherecho.Get.
package chatroom

import (
	_ "embed"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/tetherecho"
)

//go:embed index.html
var page []byte

// NewApp returns the echo app of hub: the page at /, and the Tether server
// at /chat/rt/ behind the nickname middleware. opts (nil for defaults) are
// the Tether server's options, copied; NewApp sets Authorize, and Logger
// when it is nil (warnings and errors to stderr). With opts.Cluster, the
// server is a node of a cluster: the chat's rooms are topics across every
// node, and each node keeps the last messages said through it.
func NewApp(hub *Hub, opts *tether.Options) (*echo.Echo, *tether.Server) {
	var o tether.Options
	if opts != nil {
		o = *opts
	}
	o.Authorize = func(r *http.Request) (any, error) {
		nick, _ := tetherecho.Get(r, "nick").(string)
		if nick == "" {
			return nil, &tether.AuthError{Status: http.StatusForbidden, Message: "choose a nickname"}
		}
		return nick, nil
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if o.Cluster != nil {
		hub.node = o.Cluster.ID()
	}
	rt := tether.NewServer(tether.HandlerFunc(hub.Serve), &o)
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
