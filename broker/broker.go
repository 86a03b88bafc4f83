package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetherkit/tether/wire"
)

var (
	// ErrInvalidTopic is returned by Subscribe, Unsubscribe, Publish and
	// Presence (of a Broker, and of the tether.Server methods of the same
	// names) when the topic name is not one CheckTopic accepts. Nothing
	// changes.
	ErrInvalidTopic = errors.New("invalid topic name")
)

// MaxTopicBytes is the longest topic name.
const MaxTopicBytes = 128

// CheckTopic returns nil for a valid topic name, and an error wrapping
// ErrInvalidTopic otherwise. A valid name is 1 to MaxTopicBytes bytes of
// ASCII letters, digits and the punctuation "-_.:/@", such as "room:go" or
// "prices/EURUSD": plain enough for any bus to carry as a channel or subject
// name, and never a pattern.
func CheckTopic(topic string) error {
	if topic == "" || len(topic) > MaxTopicBytes {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrInvalidTopic, len(topic), MaxTopicBytes)
	}
	for i := 0; i < len(topic); i++ {
		if !topicByte(topic[i]) {
			return fmt.Errorf("%w: byte %#x at %d in %q", ErrInvalidTopic, topic[i], i, topic)
		}
	}
	return nil
}

func topicByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', ':', '/', '@':
		return true
	}
	return false
}

// Broker carries what is published to a topic to the sessions subscribed to
// it, and keeps who they are (presence). The sessions are the application's
// to subscribe (a Server's Subscribe, after the application's own checks);
// a Broker only records and delivers. Memory is the one-node Broker; a
// cluster's Broker keeps the same contract across nodes (a publish reaches
// every subscriber on every node, presence lists them all), delivering on
// each node to the Subscribers that node registered.
//
// All methods may be called concurrently. Methods that may wait take a
// context; when it ends they return its error, and a Subscribe or
// Unsubscribe that returns an error has changed nothing.
type Broker interface {
	// Subscribe makes sub, a session held by this node, receive what is
	// published to topic from now on, and lists it in topic's presence
	// with info (the broker keeps a copy). It reports whether sub joined:
	// false, changing nothing (info included), when a subscriber with
	// sub's ID is subscribed already.
	Subscribe(ctx context.Context, topic string, sub Subscriber, info []byte) (joined bool, err error)
	// Unsubscribe ends the subscription of the session with the public
	// id session to topic. It reports whether the session left: false,
	// changing nothing, when it was not subscribed.
	Unsubscribe(ctx context.Context, topic, session string) (left bool, err error)
	// Publish delivers m to every subscriber of topic (but
	// opts.Exclude), each through its own Deliver, in the order of the
	// calls of one publisher. It keeps m.Data as it is: the caller must
	// not change it afterwards. It does not wait for any subscriber: a
	// subscriber that cannot take the message is its own session's
	// concern (its slow-consumer policy). A topic with no subscriber is
	// not an error: the message goes nowhere.
	Publish(ctx context.Context, topic string, m wire.Message, opts *PublishOptions) error
	// Presence returns the subscribers of topic, with the info each was
	// subscribed with, in no particular order.
	Presence(ctx context.Context, topic string) ([]Member, error)
	// OnPresence arranges for fn to be called for every join and leave of
	// every topic, after the Subscribe or Unsubscribe that made it, in
	// order, one call at a time, on a goroutine of the broker's (never
	// with a lock of a session held: fn may call the sessions and the
	// broker). It may be called once; later calls are ignored.
	OnPresence(fn func(PresenceEvent))
}

// Subscriber is a session held by this node, as a Broker delivers to it.
// package tether implements it for the sessions a Server subscribes.
type Subscriber interface {
	// ID returns the session's public id: it names the session in
	// presence and in PublishOptions.Exclude.
	ID() string
	// Deliver queues a published message for the session's client
	// without waiting: a session that cannot take it applies its own
	// slow-consumer policy. d is shared by every subscriber the publish
	// reaches on this node and must not be changed.
	Deliver(d *Delivery)
}

// Delivery is one published message as a Broker hands it to the
// subscribers of one node: the same *Delivery to each of them.
type Delivery struct {
	// Topic is the topic the message was published to.
	Topic string
	// Message is the message; its Data is shared by every subscriber.
	Message wire.Message
	// Frames holds the message's encoded frames, built once per framing
	// for every subscriber on this node (wire.Frames).
	Frames *wire.Frames
	// Offset is the message's number in its topic's history (1, 2, 3...
	// per topic, whichever node published it), from a Broker that keeps
	// one (a cluster.Broker with a History); 0 from one that does not.
	Offset uint64
}

// GapReason is the reason of the close, with wire.StatusResumeGap (4000),
// of a session that missed messages of a topic (GapCloser).
const GapReason = "topic gap"

// GapCloser is a Subscriber that a Broker can close when it cannot deliver
// a topic's messages in full: a Broker that numbers them (a cluster.Broker
// with a History) and finds that some it can no longer get were published
// to the topic. package tether's subscribers implement it; a Subscriber
// that does not is only counted and logged by such a Broker.
type GapCloser interface {
	Subscriber
	// CloseGap closes the session because it missed messages of topic:
	// package tether closes it with wire.StatusResumeGap (4000) and the
	// reason GapReason, after the messages queued already. It must not
	// wait.
	CloseGap(topic string)
}

// PublishOptions configure a Publish. A nil *PublishOptions means every
// default.
type PublishOptions struct {
	// Exclude, if not "", is the public id of a session the message does
	// not go to, such as its sender's. Default: none.
	Exclude string
}

// Member is one subscriber of a topic, as presence lists it.
type Member struct {
	// Session is the session's public id.
	Session string
	// Info is what the application subscribed the session with, such as
	// its user's name; nil for none. It must not be changed.
	Info []byte
}

// PresenceChange says whether a PresenceEvent is a join or a leave.
type PresenceChange uint8

const (
	// Joined: a session was subscribed to the topic.
	Joined PresenceChange = iota + 1
	// Left: a session was unsubscribed from the topic, by the application
	// or because the session closed.
	Left
)

// String returns "joined" or "left".
func (c PresenceChange) String() string {
	switch c {
	case Joined:
		return "joined"
	case Left:
		return "left"
	}
	return fmt.Sprintf("PresenceChange(%d)", uint8(c))
}

// PresenceEvent is one join or leave, as OnPresence reports it.
type PresenceEvent struct {
	Topic  string
	Change PresenceChange
	// Member is the session that joined or left, with the info it was
	// subscribed with.
	Member Member
}

// Resumable is a Subscriber that keeps its place in each topic whose
// messages a Broker numbers (Delivery.Offset), so that a session that moves
// to another node (a durable cluster's takeover) goes on with its topics
// where it was: package tether's subscribers implement it. A Broker that
// numbers its topics' messages (a cluster.Broker with a History) calls its
// methods within Subscribe, before it returns: ResumeAfter, then, when the
// subscriber joins the topic afresh, Joined. Any other Broker never calls
// them.
type Resumable interface {
	Subscriber
	// ResumeAfter returns the offset of the last message of topic the
	// session has, and true, when its subscription continues one it had
	// (the session was taken over): Subscribe then delivers it the
	// messages after that offset that it did not have, those published
	// before Subscribe included, each once, in offset order, before any
	// later one, and not those published with it as
	// PublishOptions.Exclude; or, when they are no longer kept, it closes
	// it as a GapCloser; or, when they cannot be had for now (the store
	// that keeps them cannot be reached), Subscribe fails, the subscriber
	// given nothing and not subscribed. It returns false for a
	// subscription that starts now: Subscribe then calls Joined.
	ResumeAfter(topic string) (offset uint64, ok bool)
	// Joined tells the session that its subscription to topic starts
	// after the message of offset: it receives those after it.
	Joined(topic string, offset uint64)
}
