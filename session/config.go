package session

import "time"

// SlowConsumerPolicy says what Send does when the client has not acknowledged
// Config.MaxQueuedBytes of messages.
type SlowConsumerPolicy uint8

const (
	// SlowConsumerClose closes the session with StatusSlowConsumer.
	SlowConsumerClose SlowConsumerPolicy = iota
	// SlowConsumerDrop drops the new message: Send returns ErrDropped and
	// the session's dropped count grows. Messages already queued are kept,
	// so what the client does receive is still in order and complete up to
	// the drops.
	SlowConsumerDrop
	// SlowConsumerBlock makes Send wait until the client acknowledges
	// enough, or its context ends. A Send made while a message callback
	// runs does not wait (the acknowledgements may be held up behind the
	// callback): the queue goes up to twice MaxQueuedBytes, then the
	// session closes as under SlowConsumerClose.
	SlowConsumerBlock
)

// String returns the policy's name.
func (p SlowConsumerPolicy) String() string {
	switch p {
	case SlowConsumerClose:
		return "close"
	case SlowConsumerDrop:
		return "drop"
	case SlowConsumerBlock:
		return "block"
	}
	return "unknown"
}

// The defaults of Config's fields, which a server's options share.
const (
	DefaultHeartbeatInterval = 25 * time.Second
	DefaultResumeWindow      = 30 * time.Second
	DefaultMaxMessageBytes   = 64 << 10
	DefaultMaxQueuedBytes    = 4 << 20
)

// Config holds the limits and timings shared by the sessions of one server.
// It must not be changed after the first session uses it. Its zero value
// (and a nil *Config) gives every default.
type Config struct {
	// HeartbeatInterval is how often transports send a heartbeat on an idle
	// connection; a closed session waits two of them, at most, for its
	// client to collect the close frame. Default 25s
	// (DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration
	// ResumeWindow is how long a session with no attached connection waits
	// for the client to attach again. Default 30s (DefaultResumeWindow).
	ResumeWindow time.Duration
	// FirstAttachWindow, if shorter than ResumeWindow and not zero, is how
	// long a new session waits for its first connection: a client that
	// negotiates and never attaches holds its session this long only.
	// Default 0: ResumeWindow.
	FirstAttachWindow time.Duration
	// MaxMessageBytes is the largest message in either direction. Default
	// 64 KiB (DefaultMaxMessageBytes).
	MaxMessageBytes int
	// MaxQueuedBytes bounds, in each direction, the bytes of messages held
	// by the session: sent but not acknowledged, and received but not yet
	// read with Recv. Each message counts its data's length plus
	// MessageOverhead. A message larger than the bound is still let
	// through when nothing else is queued. Default 4 MiB
	// (DefaultMaxQueuedBytes).
	MaxQueuedBytes int
	// SlowConsumer is applied when Send would go over MaxQueuedBytes, or
	// QueueBudget refuses its message. Default SlowConsumerClose.
	SlowConsumer SlowConsumerPolicy
	// QueueBudget, if not nil, bounds what the queues of all the sessions
	// made with it hold together, in both directions (see QueueBudget).
	// Default: none, each session bounded by MaxQueuedBytes alone.
	QueueBudget *QueueBudget
	// Observer, if not nil, is told what the sessions do, for metrics.
	// Default: none.
	Observer Observer
	// NodeID, when not empty, names the cluster node that holds the
	// sessions: each session's id is NodeID, a dot, then the 22 random
	// base64url characters of a session id, so that any node can tell
	// which one holds a session from its id alone. NodeID must not hold
	// a dot. Default "": the ids are the random characters alone.
	NodeID string
}

// withDefaults returns cfg if it sets every field that has a default, and
// otherwise a copy with the defaults filled in: a server's Config is
// complete, so its sessions share it.
func (cfg *Config) withDefaults() *Config {
	if cfg != nil && cfg.HeartbeatInterval > 0 && cfg.ResumeWindow > 0 && cfg.MaxMessageBytes > 0 && cfg.MaxQueuedBytes > 0 {
		return cfg
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ResumeWindow <= 0 {
		c.ResumeWindow = DefaultResumeWindow
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	return &c
}

// ackEvery is how many client messages a bidirectional link accepts before
// its next Pull returns an acknowledgement without waiting.
const ackEvery = 32

// ackDelay is how long a bidirectional link waits, after client messages
// arrive with nothing going out, before it sends their acknowledgement
// alone: long enough to cover a burst with one acknowledgement, short
// enough that a client's bounded send buffer never waits long.
const ackDelay = 20 * time.Millisecond
