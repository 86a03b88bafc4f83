package cluster

import (
	"context"
	"errors"
)

// Bus carries messages between the nodes of a cluster: publish and
// subscribe for what goes to every node (topics, presence, membership), and
// request and reply for what goes to one node (a session's relayed calls).
// It is what a cluster needs of Redis or NATS; package redisbus and package
// natsbus implement it, and MemoryBus joins nodes in one process.
//
// Delivery is at most once: a message may be lost (the engine restarted, a
// subscriber fell behind), never duplicated. Messages one goroutine
// publishes to one subject arrive in the order published. Everything built
// on a Bus is safe with such delivery: a session's messages are numbered and
// replayed, so a relayed batch that is lost is sent again.
//
// Subjects are strings of ASCII letters, digits and "-_.", with no empty
// element between dots, as the package names them ("tether.node.X"); an
// implementation may put a prefix of its own in front to share an engine
// among clusters; a method given another subject returns an error and does
// nothing (ValidSubject). All methods may be called concurrently.
type Bus interface {
	// Publish sends data to every current subscriber of subject, without
	// waiting for them to handle it. Data is not kept: the caller may
	// reuse it when Publish returns. It returns ErrTooBig for data over
	// MaxPayload, ErrClosed after Close, and an error wrapping
	// ErrUnavailable when the engine cannot be reached.
	Publish(ctx context.Context, subject string, data []byte) error
	// Subscribe calls fn with each message published to subject once
	// Subscribe has returned, one at a time and in order, on a goroutine
	// of the bus's, until the Subscription is closed. fn must return
	// quickly (hand long work to a goroutine of its own); it must not
	// keep data after it returns.
	Subscribe(ctx context.Context, subject string, fn func(data []byte)) (Subscription, error)
	// Request sends data to the handler serving subject (Serve) and
	// returns its reply. It returns ErrNoResponders at once when no
	// handler serves subject, an error wrapping ErrUnavailable when the
	// engine cannot be reached, and ctx's error when ctx ends before the
	// reply arrives (the request or its reply may have been lost). The
	// handler's context carries ctx's deadline.
	Request(ctx context.Context, subject string, data []byte) ([]byte, error)
	// Serve answers the Requests sent to subject with handle, each on a
	// goroutine of its own (handlers may wait, within their context's
	// deadline), until the Subscription is closed. handle's ctx ends at
	// the requester's deadline, or when the Subscription or the bus
	// closes; handle must not keep data after it returns. Its reply may
	// be nil (an empty reply). One handler serves a subject: a second
	// Serve of the same subject returns ErrServed.
	Serve(ctx context.Context, subject string, handle func(ctx context.Context, data []byte) []byte) (Subscription, error)
	// MaxPayload returns the most bytes one message, request or reply
	// may carry.
	MaxPayload() int
	// Close ends every subscription and handler of this bus value and
	// lets go of its connections. It does not close a client the
	// application passed in.
	Close() error
}

// Subscription is what Subscribe and Serve return: Close ends it. Close may
// be called more than once.
type Subscription interface {
	Close() error
}

var (
	// ErrNoResponders is returned by Bus.Request when no handler serves
	// the subject: for a node's subject, the node is gone (or not yet
	// subscribed again after the engine restarted).
	ErrNoResponders = errors.New("cluster: no handler serves the subject")
	// ErrUnavailable is wrapped by the errors a Bus returns when its
	// engine cannot be reached.
	ErrUnavailable = errors.New("cluster: bus unavailable")
	// ErrClosed is returned by a Bus's methods after its Close.
	ErrClosed = errors.New("cluster: bus closed")
	// ErrTooBig is returned by Publish and Request for data over
	// MaxPayload, and by Request when the handler's reply is over it (the
	// handler ran: the reply is what was lost).
	ErrTooBig = errors.New("cluster: message over the bus's payload limit")
	// ErrServed is returned by Serve for a subject this bus serves
	// already.
	ErrServed = errors.New("cluster: subject served already")
)
