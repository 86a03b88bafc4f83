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
//
// # Durable sessions
//
// A session made by NewJournaled, or by Restore with Restored.Journal,
// writes what changes in it to a Journal (a cluster node's shared store),
// so that when its process dies another one takes it over (Restore, from
// what the Journal stored) and its client goes on with nothing lost,
// duplicated or reordered. What the client is told has happened is always
// stored first:
//
//   - A message queued by Send or SendShared goes to a connection only
//     once a Write that holds it has returned nil. Writes are batched:
//     while one is under way, what is sent meanwhile waits and goes in the
//     next one, a single Write however many messages it holds. A goroutine
//     writes while there is something to write, and ends when there is not.
//   - The client's acknowledgements go in the next Write; they do not make
//     one by themselves until 64 of them wait. A session taken
//     over may therefore replay a few messages the client has, which it
//     drops as duplicates.
//   - Deliver returns once the received count that covers its messages is
//     stored: a send request is answered, and a bidirectional connection's
//     acknowledgement sent, only then. With a message callback
//     (OnMessage, a server's Callbacks), what the callbacks send during
//     Deliver is written in the same Write as that count, and nothing of
//     either before they return: either both are stored or neither is, and
//     a client that sends the message again to the process that took the
//     session over has it handled once. An application that echoes with
//     callbacks thus has each message's effect exactly once across the
//     loss of a process. One that reads with Recv gets the received count
//     stored before Deliver returns, and what it sends after Recv in a
//     Write of its own: if the process dies in between, the message has
//     been received and its answer is lost, so an answer must be sent
//     again by the application (or the callbacks used).
//   - A Write that fails with an error wrapping ErrLeaseLost (another
//     process took the session over; its state is gone), or a call to
//     LeaseLost, ends the session here at once, with no close frame: its
//     connections end (a long poll answers 503), the store lets go of it,
//     and its application's Recv, Send and OnClose function get an error
//     wrapping ErrLeaseLost. The client attaches again and is served by the
//     new owner.
//   - Any other error of a Write is taken as passing (the store cannot be
//     reached): the session writes again after a pause, from 10 ms
//     doubling up to 1 s, for as long as it lives. Meanwhile messages stay
//     queued and are not sent, and Deliver waits until its context ends,
//     then returns an error wrapping ErrUnreachable: a send request
//     answers 503 and a WebSocket ends, and the client sends again.
//   - A topic's message numbered in its history (SendSharedAt) has its
//     topic offset written in the same Write as the message
//     (Entry.TopicOffsets), so that the process that takes the session
//     over knows, per topic, exactly what the client may have been sent,
//     and delivers what follows (Restored.TopicOffsets).
//
// A WebSocket delivers each client message on its own, and its
// connection carries the acknowledgements of client messages, which count
// only what is stored: its Deliver (given AcknowledgedInBand) returns
// without waiting while fewer than 64 client messages, and sent messages,
// wait to be stored, so that a burst is stored many messages to a Write.
// A session without a journal behaves as before, at the same cost.
package session
