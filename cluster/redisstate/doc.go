// Package redisstate keeps the recoverable state of Tether sessions in Redis,
// so that another node of a cluster can take a session over when the node
// that owned it dies, and go on numbering, replaying and receiving exactly
// where the dead node stopped. Its Store is a cluster.StateStore: give it
// to a node as cluster.NodeOptions.State to make the node durable; the
// types and errors it shares with package cluster (Lease, State,
// ErrFenced...) are that package's.
//
// A session's state is its token (stored hashed), its two counters (messages
// sent to the client and client messages received), the outbound messages the
// client has not acknowledged, its topic subscriptions and the application's
// negotiate data. The owning node writes what changed as a session.Entry, in
// one round trip to Redis, before it tells the client that anything happened (a
// send is answered, a message is delivered).
//
// # Ownership: a lease with an epoch
//
// A node owns a session through a cluster.Lease: the node's id and an epoch, a
// number that grows by one at each change of owner. The lease lasts LeaseTTL
// from the last write or Renew; once it has lapsed, another node may TakeOver
// the session, which raises the epoch and returns the state. Every write is a
// Lua script that compares its epoch with the stored one in the same round
// trip, so an owner that was thought dead and comes back (a paused process, a
// partition) gets cluster.ErrFenced and writes nothing: at any time at most one
// epoch can change the state. Two nodes that race to take a session over are
// ordered by Redis: one gets the lease, the other cluster.ErrOwned (with the
// winner's id in an *cluster.OwnedError).
//
// A node keeps its leases with a cluster.Renewer, which renews them in one
// pipeline (RenewAll) every LeaseTTL/3, all but those a write extended since
// its last round, and tells the node of each one it
// lost (taken over, expired), and releases them when it shuts down
// (Release), so that other nodes take its sessions over at once.
// session.Restore, given cluster.State.Restored, makes the session that goes
// on from a TakeOver's state.
//
// # Data layout
//
// The keys of one session share the hash tag {<session id>}, so that on a
// Redis Cluster they live on one shard and each script touches one slot:
//
//	<Prefix>:{<id>}:state   hash
//	    v         format version ("1"); any other value: cluster.ErrStateVersion
//	    token     hex SHA-256 of the session's token
//	    epoch     the current owner's epoch (1 at Create)
//	    sent      messages numbered for the client so far
//	    acked     messages the client has acknowledged (<= sent)
//	    received  client messages accepted
//	    info      the application's negotiate data (opaque bytes)
//	    x         the owner's clock (Unix ms) when a write, Create or
//	              TakeOver last set the keys' expiry
//	    released  the epoch whose lease Release ended, until the next
//	              TakeOver: every call with it gets cluster.ErrFenced
//	    o:<topic> the offset in the topic's history that the session has
//	              reached (session.Entry.TopicOffsets), only ever raised,
//	              dropped when the session leaves the topic
//	    i:<topic> the presence info the session joined the topic with
//	              (session.Entry.SubscribeInfo), none for a topic joined
//	              without any, dropped when the session leaves the topic
//	<Prefix>:{<id>}:out     stream: one entry per unacknowledged message,
//	                        entry id "<message number>-0", fields
//	                        t (type, decimal) and d (data); entries up to
//	                        acked are trimmed (XTRIM MINID) by the write that
//	                        acknowledges them
//	<Prefix>:{<id>}:topics  set of the session's topics
//	<Prefix>:{<id>}:lease   string "<epoch> <node id>", expiring after
//	                        LeaseTTL (PX)
//
// Create, TakeOver and Renew set the expiry of the state, out and topics keys
// to ResumeWindow, and so does a write when the last one that did (the field
// x) is more than a third of LeaseTTL ago (at most half of what ResumeWindow
// has beyond LeaseTTL): a busy session's writes leave the expiry as it is
// most of the time, and a key a write makes gets it at once. The state of a
// session whose owner is gone lasts as long as the client may come back
// (ResumeWindow after the owner's last write, less at most that third of
// LeaseTTL, as after a Renew of the last round), then Redis drops it. Every
// write extends the lease. Counters and message numbers
// cross into Lua as decimal strings and are stored as given, so numbers up to
// 2^53 are exact.
//
// # Errors
//
// A call that cannot reach Redis returns an error wrapping
// cluster.ErrStateUnavailable (and the cause, such as
// context.DeadlineExceeded). The write may or may not have happened: writes are
// idempotent (messages at or below the stored count are skipped, counters only
// grow), so the owner retries the same session.Entry. State that does not
// decode (missing or malformed fields, keys of the wrong type, a stream out of
// order) gives cluster.ErrStateCorrupt, and state written by another format
// version cluster.ErrStateVersion; neither is ever a panic, and the caller
// closes the session rather than guess.
//
// # Cost
//
// Create, Write, Renew, Release, Delete and TakeOver (which returns the state
// it took over) are one EVALSHA each: one round trip. WriteAll sends many
// sessions' writes in one pipeline, as RenewAll does their renewals: a
// durable node coalesces its sessions' writes this way
// (cluster.StateBatchWriter). Inside it, a Write
// that stores messages for the client runs one HMGET, one XADD per message,
// one HSET and the lease's SET (the steady state of a busy session: five
// Redis commands with the EVALSHA), and more only to trim acknowledged
// messages (XTRIM), change topics, or set the expiry again. RenewAll renews all of
// a node's leases in one pipeline. BenchmarkWrite
// measures a Write of 64-byte messages that acknowledges the previous batch
// (the steady state of a client that keeps up): it sends Redis the messages'
// data plus about 25 bytes per message and about 310 bytes per batch for a
// 7-byte session id, four times the id's length more for longer ids (the
// script's four key names), and reads a 4-byte answer. A TakeOver of a
// session with 100 unacknowledged 64-byte messages sends about 400 bytes and
// reads the state back, about 5 KB. Run it with:
//
//	go test -run '^$' -bench . ./cluster/redisstate
//
// # Topic history
//
// TopicHistory, a cluster.History, keeps what is published to each topic,
// numbered per topic, in a stream per topic (see its layout), so that the
// nodes of a cluster deliver every topic in one order and fetch what their
// bus lost.
//
// # The client
//
// The application makes the client (redis.NewClient, redis.NewClusterClient or
// redis.NewUniversalClient) and closes it after the Store; its MaxRetries,
// DialTimeout, ReadTimeout and WriteTimeout bound how long a call waits for an
// unreachable Redis. Redis 7 or later.
package redisstate
