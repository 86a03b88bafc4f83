package session

import (
	"context"
	"time"

	"github.com/tetherkit/tether/wire"
)

// Endpoint is a session as a transport sees it: what a connection attaches
// to, delivers the client's messages into, and acknowledges through. The
// server finds it with Store.Lookup and hands it to the transport that
// serves the request. A session held by this process is served by its
// *Local; another implementation may serve a session held elsewhere,
// relaying each call to the process that holds it, and a test may serve a
// transport with a fake.
//
// All methods may be called concurrently, from any number of requests and
// connections at once. An Endpoint stays usable after its session has ended:
// Attach then returns ErrUnknownSession, Deliver the session's CloseError,
// and Fault and CloseFromClient do nothing. A relaying implementation that
// cannot reach the session's holder answers as for an ended session.
// A session that moved to another process (ErrLeaseLost) answers Attach,
// Deliver and Acknowledge with an error wrapping ErrUnreachable.
type Endpoint interface {
	// ID returns the public session id, for logs.
	ID() string
	// Context is canceled when the session closes.
	Context() context.Context
	// Err returns the CloseError that ended the session, or nil while it
	// is open.
	Err() error
	// Finished reports whether the session has ended for good: no
	// connection can attach any more.
	Finished() bool
	// Attach attaches a connection, superseding the one attached
	// before. The transport takes what to send from the returned Link
	// and calls its Detach once the connection is over. Local.Attach
	// documents the replay and the errors.
	Attach(opts AttachOptions) (Link, error)
	// Deliver hands messages from the client, numbered from seq, to the
	// session, waiting (until ctx ends) while its inbound queue is full;
	// Local.Deliver documents numbering and errors.
	Deliver(ctx context.Context, seq uint64, msgs []wire.Message) error
	// Acknowledge records that the client has received the first received
	// messages of the session.
	Acknowledge(received uint64) error
	// Fault closes the session because its client broke the protocol,
	// once the application has handled the messages before the fault.
	Fault(ce wire.CloseError)
	// CloseFromClient ends the session because the client sent a close
	// frame (or its connection cannot carry one any more).
	CloseFromClient(ce wire.CloseError)
}

// Link is one connection attached to a session (Endpoint.Attach): the
// transport's handle for taking what to send. A transport either pulls
// (Pull waits for something to send) or is told (AttachOptions.Notify, then
// Collect); either way one goroutine at a time takes from a Link, and a
// Link with Notify is not used with Pull. Done and Detach may be called
// from any goroutine. A Link is over when it is superseded by a newer
// attach or its session has finished: Pull and Collect then return
// ErrSuperseded or ErrFinished, or, for a session that moved to another
// process (ErrLeaseLost), an error wrapping ErrUnreachable: the transport
// ends the connection without a close frame (a long poll answers 503), and
// the client attaches again. The transport calls Detach exactly once,
// when its connection is gone, whether or not the Link is over.
type Link interface {
	// Pull waits for something to send and returns it, holding at most
	// maxBytes of messages (at least one when one is waiting); after
	// wait passes with nothing to send it returns an empty Batch: the
	// transport sends a heartbeat. It returns ctx.Err() when ctx ends.
	// The returned Messages are valid until the next Pull.
	Pull(ctx context.Context, wait time.Duration, maxBytes int) (Batch, error)
	// Collect returns what there is to send now, without waiting, within
	// maxBytes as for Pull. The Link decides when an acknowledgement of
	// client messages is due, for Pull and Collect alike (every so many
	// messages, or a short delay after the first one nothing
	// acknowledged), and notifies the transport then: a transport keeps
	// no acknowledgement timer. The returned Messages are valid until the
	// next Collect.
	Collect(maxBytes int) (Batch, error)
	// Done is closed when the Link is over.
	Done() <-chan struct{}
	// Detach tells the session that the connection is gone. If the close
	// frame went out on it, the session ends; otherwise, unless another
	// connection has attached since, the resume window starts.
	Detach()
}

var _ Link = (*link)(nil)
