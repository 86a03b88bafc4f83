// Package natsstate keeps the recoverable state of Tether sessions in a NATS
// JetStream key-value bucket, so that another node of a cluster can take a
// session over when the node that owned it dies, and go on numbering,
// replaying and receiving exactly where the dead node stopped. Its Store is
// a cluster.StateStore, like package redisstate's: give it to a node as
// cluster.NodeOptions.State to make the node durable; the types and errors
// it shares with package cluster (Lease, State, ErrFenced...) are that
// package's. A cluster on NATS can then do without Redis altogether
// (cluster/natsbus for the bus); it has no topic history on NATS
// (cluster.NodeOptions.History), so a durable session subscribed to topics
// closes with 4000 topic gap when it is taken over.
//
// # Data layout
//
// The bucket (Options.Bucket, "tether_state" by default; New creates it,
// with one value per key and a TTL of ResumeWindow) holds one value per
// session, under the session's id as its key. New makes it with direct gets
// off, so that every read goes to the stream's leader, never to a replica
// that lags. The value is the session's
// whole state in a binary format of this package (see record.encode):
// the format Version, the owner's epoch and node id, whether the owner
// released it, the SHA-256 of the token, the three counters, the
// application's negotiate data, the topics and their offsets, the
// unacknowledged messages, and the presence info of the topics joined with
// any.
//
// # Ownership: a lease with an epoch
//
// Every change is a compare-and-set on the key's revision (a publish with
// the expected last sequence of its subject): a Write whose epoch was the
// session's when the Store read the state succeeds only if nothing was
// written since, so an owner that was taken over gets cluster.ErrFenced and
// writes nothing, and of two nodes racing to take a session over one wins,
// the other gets cluster.ErrOwned. There is no time-to-live per key (the
// nats-server 2.9 this package supports has none), so a lease lasts LeaseTTL
// from the time the server stored the value (the owner's last write, Renew
// or TakeOver), and TakeOver compares that with the taking node's clock: a
// node whose clock runs ahead of the server's by d takes sessions over d
// early, and one that runs behind, d late. Keep the clocks synchronized
// (NTP) to well within LeaseTTL; fencing keeps an early takeover safe
// (the old owner's next write fails), but its client may then be served
// by two nodes for a moment, as after any pause of the owner. Release marks
// the lease ended in the value, so that TakeOver does not wait.
//
// # Expiry
//
// The bucket's TTL (JetStream's MaxAge) removes a session's value
// ResumeWindow after it was last written: every Write, Renew and Release
// writes it, so the state lasts ResumeWindow after its owner's last one. The
// Store also treats a value older than ResumeWindow as gone (the server
// removes expired values on a timer of its own), by the same clocks as the
// lease. Delete purges the key.
//
// # Cost
//
// Each Write rewrites the session's whole state, its unacknowledged messages
// included: for a client that keeps up that is a few messages, but a
// client that stops acknowledging makes each Write larger, up to the
// session's queue (session.Config.MaxQueuedBytes). A value cannot exceed the
// server's max_payload (1 MB by default): a Write that would make it larger
// returns an error wrapping cluster.ErrStateUnavailable and
// nats.ErrMaxPayload, and succeeds again once the client's acknowledgements
// have made the state smaller, so the session stalls meanwhile. Set
// max_payload above MaxQueuedBytes (4 MiB by default) plus the size of a
// batch, or lower MaxQueuedBytes, when clients may fall that far behind.
//
// Write, Renew and Release are one round trip: the Store remembers the
// revision it last wrote for each session it holds (and the state, which
// it holds in memory besides the session's own copy), and sets the next
// value on it. When it holds none (after an error, or for a lease it did not
// get from this Store) it reads the state first: two round trips. Create is
// one round trip; TakeOver two (a read, then the compare-and-set); Delete
// two when the Store holds no revision. RenewAll sends its renewals
// together, up to 64 in flight. The calls of one Store on one session take
// turns (a renewal waits for the write in flight), so a compare-and-set
// finds the state changed only when another node changed it (a takeover),
// which costs a read and another try.
//
// BenchmarkWrite measures it: a Write of one 64-byte message that
// acknowledges the previous batch (the steady state of a client that keeps
// up) sends JetStream about 430 bytes in one message and reads about 40
// back; 16 such messages, about 1.4 KB. With 100 messages unacknowledged,
// a Write of one more sends about 7 KB: the state, not the change. Run it
// with:
//
//	go test -run '^$' -bench . ./cluster/natsstate
//
// # Errors
//
// A call that cannot reach JetStream returns an error wrapping
// cluster.ErrStateUnavailable (and the cause, such as
// context.DeadlineExceeded). The write may or may not have happened: writes
// are idempotent (messages at or below the stored count are skipped,
// counters only grow), so the owner retries the same session.Entry. A value
// that does not decode gives cluster.ErrStateCorrupt, and one of another
// format version cluster.ErrStateVersion; neither is ever a panic, and
// neither changes anything. Session ids are keys: up to MaxIDBytes ASCII
// letters, digits, "-", "_", "=" and dots, with no empty element between
// dots (the ids Tether's nodes make qualify); any other gives
// cluster.ErrInvalidSessionID.
//
// # The connection
//
// The application makes the connection (nats.Connect, with
// nats.MaxReconnects(-1) as a cluster node's should) and closes it after
// the Store. A call waits for JetStream as long as its context lets it:
// give the node a RequestTimeout that bounds it. nats-server 2.9 or later,
// with JetStream enabled.
package natsstate
