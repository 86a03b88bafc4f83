package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// ExampleDial connects to a Tether server mounted at /rt/, sends a message
// and prints the reply. The session survives connection cuts by itself;
// Recv reports its end as a wire.CloseError.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, "http://127.0.0.1:8080/rt/", &client.Options{
		Header: http.Header{"Authorization": {"Bearer <token>"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(wire.StatusNormalClosure, "done")

	if err := s.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("hello")}); err != nil {
		log.Fatal(err)
	}
	m, err := s.Recv(ctx)
	if err != nil {
		if code := wire.CloseStatus(err); code != -1 && code.Reconnects() {
			log.Print("the server asks for a new session: Dial again after a delay")
		}
		log.Fatal(err)
	}
	fmt.Printf("%s over %s: %s\n", m.Type, s.Transport(), m.Data)
}
