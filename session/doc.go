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
// Three audiences, three types. An application is given a *Session: Send,
// Recv, Close, Context and the accessors. A transport is given an Endpoint:
// it attaches a connection (Attach, and the Link it returns), delivers the
// client's messages (Deliver), and passes on acknowledgements, faults and
// the client's close. The server holds each session as a *Local (New), the
// one-process Endpoint, and keeps it in a Store, which finds the Endpoint a
// request names. A session held by another process can be served by
// another Endpoint, found by another Store, with no change to transports.
package session
