package redisbus_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster/redisbus"
)

// ExampleNew joins a node to the cluster through Redis. The application
// makes the client and closes it after the Bus.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	bus, err := redisbus.New(client, &redisbus.Options{Prefix: "tether-prod"})
	if err != nil {
		log.Fatal(err) // Redis could not be reached: the error wraps cluster.ErrUnavailable
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
