package session

import "github.com/tetherkit/tether/wire"

// Observer is told what the sessions of a server do, for metrics. A server
// sets one in Config.Observer; nil means no one is told.
//
// Its methods are called with the session's lock held, on the paths that
// move messages (once per batch, not per message): they must be quick,
// must not block, and must not call back into the session. Counters with
// atomic adds are what they are for.
type Observer interface {
	// Opened is called once for each new session, before it has a
	// connection.
	Opened()
	// Attached is called when a connection of transport attaches. previous
	// is the transport of the session's last connection, "" for the first.
	// replayed is how many messages an earlier connection carried that the
	// client says it did not receive, and that this one replays.
	Attached(transport, previous string, replayed uint64)
	// Detached is called when the connection of transport ends without
	// another taking its place, or is superseded by another (then
	// Attached follows).
	Detached(transport string)
	// MessagesOut is called when a connection of transport is handed n
	// messages of size bytes in all to write (replays included).
	MessagesOut(transport string, n, size int)
	// MessagesIn is called when the session accepts n new client messages
	// of size bytes in all (duplicates excluded); transport is the one
	// attached last (HTTP transports deliver through send, often between
	// two attaches), "" before the first.
	MessagesIn(transport string, n, size int)
	// Dropped is called when Send drops a message under SlowConsumerDrop.
	Dropped()
	// Finished is called once when the session ends, with the transport
	// attached then ("" if none) and the code it ended with.
	Finished(transport string, code wire.StatusCode)
}
