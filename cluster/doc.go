// Package cluster makes several Tether servers one service: any node serves
// any session, on every transport, with no sticky sessions, and a publish
// on any node reaches the subscribers of every node.
//
// The nodes share a Bus (Redis through package redisbus, NATS through
// package natsbus, or MemoryBus in one process). The node that creates a
// session owns it: the application's handler runs there, and the session's
// id names the node. A request that reaches another node is relayed over
// the bus to the owner, which checks the token and answers; the node that
// received the request serves the connection.
//
// # Durable sessions
//
// A node given a StateStore (NodeOptions.State; package redisstate keeps
// it in Redis) is durable: the sessions it creates outlive it. Each is
// created in the store at negotiate, before the client learns its id, and
// owned through a Lease that the node's Renewer renews every LeaseTTL/3
// (leaving out those a write extended since its last round);
// the session writes every change through (session.Journal) before the
// client learns of it, and its state is deleted when it ends. On a store
// that is a StateBatchWriter (redisstate's is), the writes the node's
// sessions make while others are in flight go together in one WriteAll.
//
// When the owner is gone (the bus has had no handler for it for
// OwnerGoneAfter), a request for one of its sessions on any node asks the
// store to take the session over (StateStore.TakeOver). Once the dead
// owner's lease has lapsed that succeeds: the node restores the session
// (session.Restore) through the server (session.DurableStore.SetRestore),
// which subscribes it to its topics and runs the application's Handler or
// Callbacks for it (Session.TakenOver reports true), and serves the
// request. With a History (NodeOptions.History), each subscription goes on
// from the topic offset the session had stored with its messages: what was
// published after it, while no node held the session included, is
// delivered first from the History (broker.Resumable), or the session
// closes with 4000 "topic gap" when the History no longer holds it (or
// holds it corrupt). Until then the request is answered as for an owner
// that cannot be reached (503, or a connection that ends without a close
// frame) and the client tries again. A takeover that fails (the History
// cannot be reached, or answers too slowly, for NodeTimeout; too many
// sessions on the node; the node shutting down) is answered so too: the
// node ends the session it was restoring without a close frame, keeps its
// state and releases its lease, and the client's next request, on any
// node, takes it over again, nothing lost. The session keeps its id: a node that finds the
// session's id naming a gone node, or a node that does not hold it, asks
// the store, and relays to the node that took it over (an *OwnedError
// names it), remembering it for a while; of two nodes that race, the store
// lets one take the session over and the other relays to it.
//
// A node that loses a lease (the store says ErrFenced: another node took
// the session over, after a pause of this one's, say) ends that session at
// once without a close frame (session.ErrLeaseLost), and its client comes
// back to the new owner. Node.Handover does the same for every session on
// purpose, releasing the leases so that others take the sessions over at
// once: a graceful shutdown that keeps them. When the store cannot be
// reached at a takeover the request answers 503; state that expired gives
// the close StatusOwnerGone as on a node that is not durable, and state
// that is corrupt or of another format version StatusInternalError with
// the reason "session state unreadable" (logged at Error).
package cluster
