package session

import "errors"

var (
	// ErrUnknownSession is returned by Store.Lookup and Attach for a session
	// that does not exist, has ended, or whose token does not match.
	ErrUnknownSession = errors.New("unknown session")
	// ErrTooManySessions is returned by Store.Add when the store is full.
	ErrTooManySessions = errors.New("too many sessions")
	// ErrDropped is returned by Send under SlowConsumerDrop when the message
	// was dropped.
	ErrDropped = errors.New("message dropped: client too slow")
	// ErrQueueBudget is wrapped by the errors returned when the
	// server's QueueBudget refused a message: Send's and SendShared's
	// ErrDropped under SlowConsumerDrop, and the error of a Send (under
	// SlowConsumerBlock) or a Deliver whose ctx ended while it waited
	// for room.
	ErrQueueBudget = errors.New("server queue budget exhausted")
	// ErrSequenceGap is returned by Deliver when messages are missing
	// before the ones delivered; the session is closed with
	// StatusResumeGap.
	ErrSequenceGap = errors.New("sequence gap")
	// ErrBadAck is returned by Acknowledge for a count larger than the
	// number of messages sent.
	ErrBadAck = errors.New("acknowledgement of messages never sent")
	// ErrSuperseded is returned by Link.Pull once another connection has
	// attached to the session.
	ErrSuperseded = errors.New("superseded by another connection")
	// ErrFinished is returned by Link.Pull once the session has ended and
	// the link has nothing more to deliver.
	ErrFinished = errors.New("session finished")
	// ErrStaleAttach is returned by Attach when the client says it has
	// received fewer messages than it has already acknowledged: the
	// request was made before others that arrived first (a retry of an
	// abandoned connection, held up on the way). It is refused; the
	// session and its attached connection go on.
	ErrStaleAttach = errors.New("stale attach")
	// ErrUnreachable is wrapped by the errors that Store.Lookup and the
	// methods of an Endpoint that relays to another process return when
	// that process cannot be reached now (the network or the bus between
	// them is down). Nothing was decided about the session: the server
	// answers 503 and the client tries again.
	ErrUnreachable = errors.New("session holder unreachable")
)
