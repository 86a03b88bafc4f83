package tetherecho_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/tetherecho"
	"github.com/tetherkit/tether/wire"
)

// ExampleMount mounts a Tether server in an echo app, behind a group whose
// middleware names the user; the server's Authorize hook reads that name
// from echo's context, and each session greets its user.
func ExampleMount() {
	srv := tether.NewServer(tether.HandlerFunc(func(s *session.Session) {
		hello := fmt.Sprintf("hello, %s", s.Request().Auth)
		s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte(hello)})
		s.Recv(s.Context()) // until the client closes
	}), &tether.Options{
		Authorize: func(r *http.Request) (any, error) {
			return tetherecho.Get(r, "user"), nil
		},
	})

	e := echo.New()
	e.Use(middleware.Recover())
	api := e.Group("/api", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Set("user", "ada") // an authentication middleware, in short
			return next(c)
		}
	})
	tetherecho.Mount(api, "/rt/", srv) // /api/rt/negotiate, /api/rt/websocket, ...

	hs := httptest.NewServer(e) // e.Start(":8080") in an application
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hs.URL+"/api/rt/", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(wire.StatusNormalClosure, "")
	m, err := c.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(m.Data))
	// Output: hello, ada
}
