package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetherkit/tether/cluster"
)

// ExampleMemoryBus joins two nodes in one process: one serves its subject,
// the other requests it, until the first node's connection closes.
func ExampleMemoryBus() {
	bus := cluster.NewMemoryBus()
	a, b := bus.Connect(), bus.Connect()
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Serve(ctx, "tether.node.a", func(ctx context.Context, data []byte) []byte {
		return append([]byte("a answers "), data...)
	})
	reply, err := b.Request(ctx, "tether.node.a", []byte("b"))
	fmt.Printf("%s %v\n", reply, err)

	a.Close() // what a killed node looks like
	_, err = b.Request(ctx, "tether.node.a", []byte("b"))
	fmt.Println(errors.Is(err, cluster.ErrNoResponders))
	// Output:
	// a answers b <nil>
	// true
}
