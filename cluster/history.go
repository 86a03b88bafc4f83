package cluster

import (
	"context"
	"errors"

	"github.com/tetherkit/tether/wire"
)

// History keeps what is published to each topic for a while, numbered per
// topic: offsets 1, 2, 3... whichever node publishes. A Broker with a
// History (BrokerOptions.History, NodeOptions.History) numbers every
// publish through it, delivers each topic in offset order on every node, and
// fetches from it what the bus lost; so a subscriber never misses a message
// silently (see Broker). Package redisstate's TopicHistory implements it in
// Redis. All methods may be called concurrently.
type History interface {
	// Append stores m, published to topic with PublishOptions.Exclude
	// exclude ("" for none), as topic's next message and returns its
	// offset: one more than the offset of the message appended before it,
	// by any node.
	Append(ctx context.Context, topic string, m wire.Message, exclude string) (offset uint64, err error)
	// Range returns topic's messages from offset from on, in order, at
	// most limit of them; none when from is past the last offset. It
	// returns an error wrapping ErrHistoryGap when messages at or after
	// from were appended but are no longer kept (trimmed or expired).
	Range(ctx context.Context, topic string, from uint64, limit int) ([]HistoryEntry, error)
	// Heads returns the last offset appended to each of topics, in their
	// order (0 for a topic without any), in one round trip.
	Heads(ctx context.Context, topics []string) ([]uint64, error)
}

// HistoryEntry is one message of a topic's history.
type HistoryEntry struct {
	Offset  uint64
	Message wire.Message
	// Exclude is the session the message was not for
	// (PublishOptions.Exclude), or "".
	Exclude string
}

var (
	// ErrHistoryGap is wrapped by the errors History.Range returns when
	// messages it should return are no longer kept.
	ErrHistoryGap = errors.New("cluster: topic history no longer holds the messages")
	// ErrHistoryUnavailable is wrapped, with the cause, by the errors a
	// History returns when its store cannot be reached; an Append may or
	// may not have happened.
	ErrHistoryUnavailable = errors.New("cluster: topic history unavailable")
	// ErrHistoryCorrupt is wrapped by the errors a History returns for
	// stored data that does not decode.
	ErrHistoryCorrupt = errors.New("cluster: corrupt topic history")
)
