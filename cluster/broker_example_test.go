package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/wire"
)

// inbox is a Subscriber that hands what it is given to a channel. A
// Server's subscribers queue it for their session's client instead.
type inbox struct {
	id  string
	got chan string
}

func (s inbox) ID() string { return s.id }

func (s inbox) Deliver(d *broker.Delivery) {
	s.got <- fmt.Sprintf("%s got %q on %s", s.id, d.Message.Data, d.Topic)
}

// Two nodes share a bus (here a MemoryBus; Redis or NATS between
// processes): a publish on one reaches the subscribers of both, and each
// node's presence lists them all.
func ExampleNewBroker() {
	ctx := context.Background()
	bus := cluster.NewMemoryBus()
	connA, connB := bus.Connect(), bus.Connect()
	defer connA.Close()
	defer connB.Close()
	a, _ := cluster.NewBroker(connA, "nodeA", nil)
	defer a.Close()
	b, _ := cluster.NewBroker(connB, "nodeB", nil)
	defer b.Close()

	ada := inbox{id: "ada", got: make(chan string, 1)}
	bob := inbox{id: "bob", got: make(chan string, 1)}
	a.Subscribe(ctx, "room:go", ada, []byte(`{"nick":"Ada"}`))
	b.Subscribe(ctx, "room:go", bob, []byte(`{"nick":"Bob"}`))

	a.Publish(ctx, "room:go", wire.Message{Type: wire.Text, Data: []byte("hello")}, nil)
	fmt.Println(<-ada.got) // delivered on nodeA before Publish returns
	fmt.Println(<-bob.got) // delivered on nodeB when the bus brings it

	// Presence on nodeA lists Bob once nodeB's join event has come (within
	// 10 s: the example fails rather than hangs when it never does).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		members, _ := a.Presence(ctx, "room:go")
		if len(members) == 2 {
			slices.SortFunc(members, func(x, y broker.Member) int { return strings.Compare(x.Session, y.Session) })
			for _, m := range members {
				fmt.Printf("%s %s\n", m.Session, m.Info)
			}
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Output:
	// ada got "hello" on room:go
	// bob got "hello" on room:go
	// ada {"nick":"Ada"}
	// bob {"nick":"Bob"}
}
