package redisstate_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// ExampleStore shows a session's life across two nodes: the owner writes
// what changes, dies, and another node takes the session over with its
// state; the first node, back from a pause, can no longer write.
func ExampleStore() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	store, err := redisstate.New(client, nil)
	if err != nil {
		panic(err)
	}

	// Node A creates the session, then writes each batch before it answers
	// the client.
	lease, err := store.Create(ctx, "nodeA.0123456789abcdefghijkl", "token", "nodeA", nil)
	if err != nil {
		panic(err)
	}
	err = store.Write(ctx, lease, &session.Entry{
		First:    1,
		Messages: []wire.Message{{Type: wire.Text, Data: []byte("hello")}},
		Received: 1,
	})
	if err != nil {
		panic(err)
	}

	// Node A is gone; after LeaseTTL a request for the session reaches
	// node B, which takes it over and carries on from the state.
	_, state, err := store.TakeOver(ctx, "nodeA.0123456789abcdefghijkl", "token", "nodeB")
	var owned *cluster.OwnedError
	switch {
	case errors.As(err, &owned):
		fmt.Println("still owned by", owned.Node, "- relay to it")
	case err != nil:
		panic(err)
	default:
		fmt.Println("replay from", state.Acked+1, "of", state.Sent)
	}

	// Node A's writes are refused from now on.
	if err := store.Renew(ctx, lease); errors.Is(err, cluster.ErrFenced) {
		fmt.Println("node A stops serving the session")
	}
}
