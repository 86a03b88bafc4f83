// Package tetherecho mounts a Tether server in a labstack/echo/v4 app.
//
// A tether.Server is an http.Handler that routes on the last element of the
// request path, so mounting it is one route: Mount registers "{prefix}*" for
// every method on an *echo.Echo or an *echo.Group. The group's middleware
// (and any given to Mount) runs before every Tether request: negotiate, the
// upstream POSTs and every transport's attach, WebSocket upgrades included.
//
//	e := echo.New()
//	api := e.Group("/api", requireUser)
//	tetherecho.Mount(api, "/rt/", srv) // negotiate at /api/rt/negotiate
//
// The server's Options.Authorize hook sees the *http.Request of negotiate.
// Within that hook, Get and Context return what echo middleware stored in
// echo's context (c.Set), so a session can be tied to the user an echo
// authentication middleware found.
//
// Middleware that rewrites response bodies, such as echo's Gzip, must not
// run on Tether's routes: streamed responses must reach the client as they
// are flushed.
package tetherecho
