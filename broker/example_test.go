package broker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/wire"
)

// printer is a Subscriber that prints what it is given. A Server's
// subscribers queue it for their session's client instead.
type printer string

func (p printer) ID() string { return string(p) }

func (p printer) Deliver(d *broker.Delivery) {
	fmt.Printf("%s got %q on %s\n", p, d.Message.Data, d.Topic)
}

// A Memory broker delivers a publish to every subscriber of the topic but
// the one excluded, and lists the subscribers with what they were
// subscribed with.
func Example() {
	ctx := context.Background()
	b := broker.NewMemory()
	b.Subscribe(ctx, "room:go", printer("ada"), []byte(`{"nick":"Ada"}`))
	b.Subscribe(ctx, "room:go", printer("bob"), []byte(`{"nick":"Bob"}`))

	msg := wire.Message{Type: wire.Text, Data: []byte("hello")}
	b.Publish(ctx, "room:go", msg, &broker.PublishOptions{Exclude: "ada"})

	members, _ := b.Presence(ctx, "room:go")
	slices.SortFunc(members, func(x, y broker.Member) int { return strings.Compare(x.Session, y.Session) })
	for _, m := range members {
		fmt.Printf("%s %s\n", m.Session, m.Info)
	}

	_, err := b.Subscribe(ctx, "room go", printer("eve"), nil)
	fmt.Println(err)
	// Output:
	// bob got "hello" on room:go
	// ada {"nick":"Ada"}
	// bob {"nick":"Bob"}
	// invalid topic name: byte 0x20 at 4 in "room go"
}
