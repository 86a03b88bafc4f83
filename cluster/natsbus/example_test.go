package natsbus_test

import (
	"context"
	"log"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/cluster/natsbus"
)

// ExampleNew joins a node to the cluster through NATS. The application
// makes the connection, reconnecting for as long as the node runs, and
// closes it after the Bus.
func ExampleNew() {
	nc, err := nats.Connect("nats://127.0.0.1:4222",
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	bus, err := natsbus.New(nc, &natsbus.Options{Prefix: "tether-prod"})
	if err != nil {
		log.Fatal(err) // the server does not support headers, or a bad Prefix
	}
	defer bus.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := bus.Serve(ctx, "tether.node.example", func(ctx context.Context, data []byte) []byte {
		return append([]byte("hello, "), data...)
	}); err != nil {
		log.Fatal(err)
	}
	reply, err := bus.Request(ctx, "tether.node.example", []byte("node"))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%s", reply)
}
