// Package session holds a Tether session: the application's side of one
// client, which outlives the connections that carry it.
//
// A Session numbers the messages it sends and keeps each one until the
// client acknowledges it, so that a connection that breaks loses nothing: the
// client attaches again (through any transport) saying how many messages it
// has received, and the session replays the rest. Messages from the client
// are numbered the same way and duplicates are dropped, so retried uploads
// are harmless. PROTOCOL.md describes the wire side of this.
//
// Applications use Send, Recv, Close, Context and the accessors. Transports
// use Attach, the Link it returns, Deliver, Acknowledge and Fault; the Store
// keeps sessions so that requests can find them.
package session
