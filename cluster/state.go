package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// StateStore keeps the recoverable state of a durable node's sessions
// (NodeOptions.State), so that another node takes a session over when its
// owner dies: package redisstate's *Store implements it on Redis. All
// methods may be called concurrently; each is one round trip to the store
// (RenewAll one pipeline).
//
// A node owns each session it keeps state for through a Lease, whose epoch
// grows at each change of owner: a write with an epoch that is no longer
// the session's changes nothing and returns ErrFenced, so that an owner
// thought dead that comes back cannot write.
type StateStore interface {
	// Create stores a new session's state, owned by node with epoch 1:
	// counters at 0, no messages, no topics, the token (or a hash of it)
	// and info, the application's negotiate data. It returns
	// ErrStateExists, ErrInvalidSessionID, or an error wrapping
	// ErrStateUnavailable.
	Create(ctx context.Context, id, token, node string, info []byte) (Lease, error)
	// Write applies e, what changed in the session since its last Write,
	// to the session's state if l's epoch is still the session's, and
	// extends the lease. Each topic of e's Subscribe is stored with its
	// SubscribeInfo (State.TopicInfo), which replaces the info the topic
	// had, and loses it with its Unsubscribe. Messages numbered at or below the stored count
	// are skipped, so an Entry may be written again after an error; a
	// First beyond the stored count + 1, or an Acked beyond the sent
	// count, gives ErrOutOfOrder. e's TopicOffsets are stored in the same
	// write as its messages, each only where it is higher than the stored
	// one, and a topic's offset is dropped with its Unsubscribe: the stored
	// offsets never run ahead of the stored messages. It returns ErrFenced,
	// ErrOutOfOrder, ErrInvalidBatch, ErrNoState, ErrStateVersion,
	// ErrStateCorrupt, ErrInvalidSessionID, or an error wrapping
	// ErrStateUnavailable (the batch may or may not be stored: writing it
	// again is harmless).
	Write(ctx context.Context, l Lease, e *session.Entry) error
	// Renew extends the lease, for a session with nothing to write.
	// Errors as for Write, besides ErrOutOfOrder and ErrInvalidBatch.
	Renew(ctx context.Context, l Lease) error
	// RenewAll renews many leases as Renew does each, and returns one
	// error per lease, nil for those renewed.
	RenewAll(ctx context.Context, leases []Lease) []error
	// Release ends the lease at once and for good, keeping the state, so
	// that another node may take the session over without waiting for
	// LeaseTTL: a later Write, Renew, RenewAll, Release or Delete with l
	// (a write that was in flight, say) returns ErrFenced and changes
	// nothing, rather than bring the lease back. Errors as for Renew.
	Release(ctx context.Context, l Lease) error
	// Delete removes the session's state and lease once the session has
	// ended. Errors as for Renew.
	Delete(ctx context.Context, l Lease) error
	// TakeOver makes node the session's owner with a new epoch, if token
	// is the session's and no other node's lease is current, and returns
	// the lease and the state. If node holds the current lease already, it
	// returns it (a retried TakeOver is harmless). It returns an
	// *OwnedError (wrapping ErrOwned), ErrBadToken, ErrNoState,
	// ErrStateVersion, ErrStateCorrupt, ErrInvalidSessionID, or an error
	// wrapping ErrStateUnavailable.
	TakeOver(ctx context.Context, id, token, node string) (Lease, *State, error)
	// LeaseTTL returns how long a lease lasts after its owner's last write
	// or renewal: how long a dead owner's sessions wait before another
	// node may take them over.
	LeaseTTL() time.Duration
}

// Lease is a node's ownership of one session, valid while its Epoch is the
// session's. It is a value: the node keeps it with the session and passes
// it to every write.
type Lease struct {
	// ID is the session's id.
	ID string
	// Node is the owning node's id.
	Node string
	// Epoch grows by one at each change of owner; 1 at Create.
	Epoch uint64
}

// State is a session's recoverable state, as StateStore.TakeOver returns
// it.
type State struct {
	// ID is the session's id.
	ID string
	// Sent is how many messages the session has numbered for the client.
	Sent uint64
	// Acked is how many of them the client has acknowledged.
	Acked uint64
	// Received is how many client messages the session has accepted: the
	// next client message is number Received+1.
	Received uint64
	// Out holds the unacknowledged messages, numbers Acked+1 to Sent in
	// order.
	Out []wire.Message
	// Topics holds the session's topics, sorted.
	Topics []string
	// TopicInfo holds the presence info the session joined each of its
	// Topics with (session.Entry.SubscribeInfo), by topic; a topic joined
	// without any is not in it; nil for none.
	TopicInfo map[string][]byte
	// TopicOffsets holds how far the session had come in its numbered
	// topics (session.Entry.TopicOffsets), by topic; nil for none.
	TopicOffsets map[string]uint64
	// Info is the application's negotiate data, as given to Create.
	Info []byte
}

// Restored returns what session.Restore continues from: the state, with
// the token of the request that took the session over (TakeOver checked
// it; a store may keep only its hash).
func (st *State) Restored(token string) session.Restored {
	return session.Restored{ID: st.ID, Token: token, Acked: st.Acked, Out: st.Out, Received: st.Received}
}

// The errors of a StateStore.
var (
	// ErrStateUnavailable is wrapped, with the cause, by the errors
	// returned when the store cannot be reached or cannot serve. A write
	// may or may not have happened: writing the same Entry again is
	// harmless.
	ErrStateUnavailable = errors.New("cluster: session state unavailable")
	// ErrNoState is returned by TakeOver, Write, Renew, Release and Delete
	// when the store holds no state for the session: it never was
	// durable, it was deleted, or it expired (the resume window after its
	// owner's last write or renewal).
	ErrNoState = errors.New("cluster: no state for the session")
	// ErrStateExists is returned by Create when the session has state
	// already.
	ErrStateExists = errors.New("cluster: the session has state already")
	// ErrOwned is wrapped by the *OwnedError TakeOver returns when another
	// node holds a lease on the session that has not lapsed.
	ErrOwned = errors.New("cluster: the session is owned by another node")
	// ErrFenced is returned by Write, Renew, Release and Delete when the
	// lease's epoch is no longer the session's (another node took the
	// session over) or the lease was released: the caller must stop
	// serving the session. Nothing was written.
	ErrFenced = errors.New("cluster: the lease was taken over")
	// ErrBadToken is returned by TakeOver when the token is not the
	// session's. Nothing was changed.
	ErrBadToken = errors.New("cluster: wrong token")
	// ErrOutOfOrder is returned by Write for a batch that does not follow
	// the stored state: its first message leaves a gap after the stored
	// count, or it acknowledges messages never sent. Nothing was written.
	ErrOutOfOrder = errors.New("cluster: batch does not follow the stored state")
	// ErrStateVersion is wrapped by the errors returned for state written
	// in another format version. Nothing was changed.
	ErrStateVersion = errors.New("cluster: session state of another format version")
	// ErrStateCorrupt is wrapped by the errors returned for state that
	// does not decode: missing or malformed fields, messages out of order.
	// Nothing was changed by the call.
	ErrStateCorrupt = errors.New("cluster: corrupt session state")
	// ErrInvalidBatch is returned by Write for an Entry whose First is 0
	// while it has messages, with a message neither Text nor Binary, or
	// whose SubscribeInfo is neither empty nor as long as its Subscribe.
	ErrInvalidBatch = errors.New("cluster: invalid batch")
)

// OwnedError is returned by TakeOver when another node's lease on the
// session has not lapsed: the caller relays to Node. It wraps ErrOwned.
type OwnedError struct {
	// Node is the id of the node holding the lease.
	Node string
}

// Error returns the error's text.
func (e *OwnedError) Error() string { return ErrOwned.Error() + ": " + e.Node }

// Unwrap returns ErrOwned.
func (e *OwnedError) Unwrap() error { return ErrOwned }
