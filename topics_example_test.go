package tether_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// ExampleServer_Publish is a chat room on a topic: each session is
// subscribed when it opens, with its user as presence info, and what one
// sends goes to everyone else in the room.
func ExampleServer_Publish() {
	var srv *tether.Server
	srv = tether.NewServer(&tether.Callbacks{
		Open: func(s *session.Session) {
			user := s.Request().Header.Get("X-User") // an Authorize hook would check it
			srv.Subscribe(s.Context(), s, "room:lobby", []byte(user))
		},
		Message: func(s *session.Session, m wire.Message) {
			srv.Publish(s.Context(), "room:lobby", m, &broker.PublishOptions{Exclude: s.ID()})
		},
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(user string) *client.Session {
		c, err := client.Dial(ctx, hs.URL+"/", &client.Options{Header: map[string][]string{"X-User": {user}}})
		if err != nil {
			panic(err)
		}
		return c
	}
	ada, bob := dial("ada"), dial("bob")
	defer ada.Close(wire.StatusNormalClosure, "")
	defer bob.Close(wire.StatusNormalClosure, "")

	members, _ := srv.Presence(ctx, "room:lobby")
	fmt.Println(len(members), "in the room")
	ada.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("hello, bob")})
	m, _ := bob.Recv(ctx)
	fmt.Println("bob got:", string(m.Data))
	srv.Publish(ctx, "room:lobby", wire.Message{Type: wire.Text, Data: []byte("closing soon")}, nil)
	m, _ = ada.Recv(ctx) // ada's first message: her own was not sent back
	fmt.Println("ada got:", string(m.Data))
	// Output:
	// 2 in the room
	// bob got: hello, bob
	// ada got: closing soon
}
