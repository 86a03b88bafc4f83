package tetherecho

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Router is what Mount registers on: *echo.Echo and *echo.Group both
// implement it.
type Router interface {
	Any(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) []*echo.Route
}

// contextKey keys the echo.Context in a request's context.
type contextKey struct{}

// Mount serves h, typically a *tether.Server, at prefix under r: every
// method on prefix and every path below it. prefix is relative to r (a
// group's own prefix comes first); a missing leading or trailing slash is
// added, so "rt", "/rt" and "/rt/" are the same. Middleware m runs after
// r's own, for these routes only. The request h receives carries the
// echo.Context in its context, for Context and Get.
func Mount(r Router, prefix string, h http.Handler, m ...echo.MiddlewareFunc) {
	prefix = "/" + strings.Trim(prefix, "/") + "/"
	if prefix == "//" {
		prefix = "/"
	}
	r.Any(prefix+"*", Handler(h), m...)
}

// Handler adapts h to an echo.HandlerFunc, like echo.WrapHandler, and
// also puts the echo.Context in the request's context, for Context and
// Get. Use it to register routes by hand, for example with e.Match.
func Handler(h http.Handler) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		h.ServeHTTP(c.Response(), r.WithContext(context.WithValue(r.Context(), contextKey{}, c)))
		return nil
	}
}

// Context returns the echo.Context of a request served through Mount or
// Handler, and whether there is one. Echo reuses its contexts once a
// request is done: use it only while the request is served (in
// Options.Authorize, for instance), never from a session's handler.
func Context(r *http.Request) (echo.Context, bool) {
	c, ok := r.Context().Value(contextKey{}).(echo.Context)
	return c, ok
}

// Get returns the value echo middleware stored under key with c.Set, for a
// request served through Mount or Handler; nil when there is none. Like
// Context, it is for use while the request is served, typically in
// Options.Authorize, whose return value the session keeps.
func Get(r *http.Request, key string) any {
	if c, ok := Context(r); ok {
		return c.Get(key)
	}
	return nil
}
