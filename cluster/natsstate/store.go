package natsstate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
)

// Version is the format version of the state this package writes (the
// first byte of each value). State of any other version gives
// cluster.ErrStateVersion.
const Version = 1

// DefaultLeaseTTL is the LeaseTTL of a nil or zero Options.
const DefaultLeaseTTL = 5 * time.Second

// DefaultBucket is the Bucket of a nil or zero Options.
const DefaultBucket = "tether_state"

// MaxIDBytes is the longest session id a Store accepts.
const MaxIDBytes = 128

// casAttempts bounds how many times a call reads the state again after a
// compare-and-set found it changed, before it gives up with
// cluster.ErrStateUnavailable: the calls of one Store on a session take
// turns, so the state changes under a call only when another Store wrote
// (a takeover), and more than a couple of times is a store that keeps
// failing.
const casAttempts = 8

// Options configures a Store. The zero value (or nil) gives the defaults.
type Options struct {
	// Bucket is the name of the JetStream key-value bucket that holds the
	// state, so that Tether clusters sharing a NATS keep apart. New
	// creates it when it does not exist. Default DefaultBucket.
	Bucket string
	// LeaseTTL is how long a lease lasts after the owner's last write or
	// Renew; an owner renews well within it (every LeaseTTL/3, say). Once
	// it lapses another node may take the session over, so it is also how
	// long a dead owner's sessions wait. Default DefaultLeaseTTL (5 s).
	LeaseTTL time.Duration
	// ResumeWindow is how long a session's state lasts after the owner's
	// last write, Renew or Release: the server's
	// session.Config.ResumeWindow, and the bucket's TTL. Default
	// session.DefaultResumeWindow. It must not be shorter than LeaseTTL.
	ResumeWindow time.Duration
	// Storage is where JetStream keeps the bucket when New creates it.
	// Default jetstream.FileStorage.
	Storage jetstream.StorageType
	// Replicas is how many JetStream servers keep the bucket when New
	// creates it. Default 1.
	Replicas int
}

// Store keeps sessions' state in a JetStream key-value bucket. All methods
// may be called concurrently; the calls on one session take turns within a
// Store (a node's Renewer renews the lease its journal writes with), so
// that they do not make each other's compare-and-set fail. Besides its
// options, it remembers the last state it wrote for each session it holds
// a lease on, so that a Write is one round trip.
type Store struct {
	kv       jetstream.KeyValue
	leaseTTL time.Duration
	window   time.Duration

	mu       sync.Mutex
	sessions map[string]*sessionEntry // by id; guarded by mu
}

var _ cluster.StateStore = (*Store)(nil)

// New returns a Store on nc's JetStream, creating the bucket when it does
// not exist. The application keeps nc. It returns an error for options out
// of range (a negative duration, a ResumeWindow shorter than LeaseTTL, an
// invalid Bucket name), when JetStream cannot be reached, or when the
// bucket exists with another TTL than ResumeWindow, or with direct gets on
// several replicas (made by hand: reads that may be stale).
func New(ctx context.Context, nc *nats.Conn, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.ResumeWindow == 0 {
		o.ResumeWindow = session.DefaultResumeWindow
	}
	switch {
	case o.LeaseTTL < time.Millisecond || o.ResumeWindow < time.Millisecond:
		return nil, fmt.Errorf("natsstate: LeaseTTL %v or ResumeWindow %v under 1 ms", o.LeaseTTL, o.ResumeWindow)
	case o.ResumeWindow < o.LeaseTTL:
		return nil, fmt.Errorf("natsstate: ResumeWindow %v shorter than LeaseTTL %v", o.ResumeWindow, o.LeaseTTL)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsstate: %w", err)
	}
	kv, err := openBucket(ctx, js, &o)
	if err != nil {
		return nil, fmt.Errorf("natsstate: %w", err)
	}
	return &Store{kv: kv, leaseTTL: o.LeaseTTL, window: o.ResumeWindow, sessions: make(map[string]*sessionEntry)}, nil
}

// openBucket creates the bucket unless it exists, and returns it. It makes
// the bucket's stream itself, as a key-value bucket with one value per key
// and a TTL of ResumeWindow, but with direct gets off: a direct get may be
// answered by a replica that lags, and a Store reads the state to decide
// what it writes (a stale read costs a compare-and-set that fails, or a
// lease wrongly found fenced), so it reads from the stream's leader.
func openBucket(ctx context.Context, js jetstream.JetStream, o *Options) (jetstream.KeyValue, error) {
	cfg := jetstream.StreamConfig{
		Name:              "KV_" + o.Bucket,
		Description:       "Tether durable session state",
		Subjects:          []string{"$KV." + o.Bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		MaxAge:            o.ResumeWindow,
		Duplicates:        min(o.ResumeWindow, 2*time.Minute),
		Storage:           o.Storage,
		Replicas:          max(o.Replicas, 1),
		Discard:           jetstream.DiscardNew,
		AllowRollup:       true,
		DenyDelete:        true,
	}
	if !validBucket(o.Bucket) {
		return nil, fmt.Errorf("invalid bucket name %q (ASCII letters, digits, \"-\" and \"_\")", o.Bucket)
	}
	_, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// It exists with another configuration: made by another version
		// of this package, or by hand. It serves if its TTL is the window
		// and its reads cannot be stale.
		var stream jetstream.Stream
		if stream, err = js.Stream(ctx, cfg.Name); err == nil {
			got := stream.CachedInfo().Config
			switch {
			case got.MaxAge != o.ResumeWindow:
				err = fmt.Errorf("bucket %q exists with TTL %v, not ResumeWindow %v", o.Bucket, got.MaxAge, o.ResumeWindow)
			case got.AllowDirect && got.Replicas > 1:
				err = fmt.Errorf("bucket %q exists with direct gets on %d replicas (reads that may be stale)", o.Bucket, got.Replicas)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return js.KeyValue(ctx, o.Bucket)
}

func validBucket(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return name != ""
}

// LeaseTTL returns the store's Options.LeaseTTL (defaults applied).
func (s *Store) LeaseTTL() time.Duration { return s.leaseTTL }

// Create stores a new session's state, owned by node with epoch 1: counters
// at 0, no messages, no topics, the token's hash and the application's
// negotiate data info (opaque; TakeOver returns it). It returns
// cluster.ErrStateExists if the session has state already,
// cluster.ErrInvalidSessionID, or an error wrapping
// cluster.ErrStateUnavailable. It is one round trip, two when the key
// holds state that expired or was deleted.
func (s *Store) Create(ctx context.Context, id, token, node string, info []byte) (cluster.Lease, error) {
	if err := checkID(id); err != nil {
		return cluster.Lease{}, err
	}
	rec := &record{epoch: 1, node: node, token: sha256.Sum256([]byte(token)), info: bytes.Clone(info)}
	value := rec.encode()
	start := time.Now()
	rev, err := s.kv.Create(ctx, id, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// State the bucket's TTL has not removed yet may have expired.
		e, gerr := s.kv.Get(ctx, id)
		if gerr != nil || !s.expired(e.Created()) {
			return cluster.Lease{}, cluster.ErrStateExists
		}
		rev, err = s.kv.Update(ctx, id, value, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return cluster.Lease{}, cluster.ErrStateExists
		}
	}
	if err != nil {
		return cluster.Lease{}, unavailable(ctx, err)
	}
	s.remember(id, &held{rev: rev, rec: rec, written: start})
	return cluster.Lease{ID: id, Node: node, Epoch: 1}, nil
}

// TakeOver makes node the session's owner with a new epoch, if the token
// is the session's and no other node's lease is current, and returns the
// lease and the state: Restore from it. From then on the previous owner's
// writes get cluster.ErrFenced. If node holds the current lease already,
// TakeOver renews it and returns it with the state (a retried TakeOver is
// harmless).
//
// It returns an *cluster.OwnedError (wrapping cluster.ErrOwned) when
// another node's lease has not lapsed, cluster.ErrBadToken,
// cluster.ErrNoState, cluster.ErrStateVersion, cluster.ErrStateCorrupt,
// cluster.ErrInvalidSessionID, or an error wrapping
// cluster.ErrStateUnavailable: then the session may or may not have been
// taken over, and calling TakeOver again tells. It is two round trips (a
// read, then a compare-and-set), two more each time another node changed
// the state in between.
func (s *Store) TakeOver(ctx context.Context, id, token, node string) (cluster.Lease, *cluster.State, error) {
	if err := checkID(id); err != nil {
		return cluster.Lease{}, nil, err
	}
	hash := sha256.Sum256([]byte(token))
	done, err := s.turn(ctx, id)
	if err != nil {
		return cluster.Lease{}, nil, err
	}
	defer done()
	for range casAttempts {
		cur, err := s.load(ctx, id)
		if err != nil {
			return cluster.Lease{}, nil, err
		}
		if cur.rec.token != hash {
			return cluster.Lease{}, nil, cluster.ErrBadToken
		}
		rec := *cur.rec
		current := !rec.released && time.Now().Before(cur.written.Add(s.leaseTTL))
		if current && rec.node != node {
			return cluster.Lease{}, nil, &cluster.OwnedError{Node: rec.node}
		}
		if !current {
			rec.epoch++
			rec.node = node
		}
		rec.released = false
		next, err := s.update(ctx, id, cur.rev, &rec)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return cluster.Lease{}, nil, err
		}
		s.remember(id, next)
		return cluster.Lease{ID: id, Node: node, Epoch: rec.epoch}, rec.state(id), nil
	}
	return cluster.Lease{}, nil, fmt.Errorf("%w: session %s changed %d times during TakeOver", cluster.ErrStateUnavailable, id, casAttempts)
}

// Write applies e to the session's state, if l's epoch is still the
// session's, and extends the lease by LeaseTTL and the state by
// ResumeWindow. It returns cluster.ErrFenced (the session was taken over:
// stop serving it), cluster.ErrOutOfOrder, cluster.ErrInvalidBatch,
// cluster.ErrNoState, cluster.ErrStateVersion, cluster.ErrStateCorrupt,
// cluster.ErrInvalidSessionID, or an error wrapping
// cluster.ErrStateUnavailable (the batch may or may not be stored: write it
// again). Nothing is written when it returns an error other than the last.
//
// It rewrites the session's whole state, its unacknowledged messages
// included, in one compare-and-set on the revision this Store wrote last:
// one round trip. It reads the state first (a second round trip) when this
// Store holds none for the session (after an error, or a lease it did not
// get from this Store), and again when the set finds that another Store
// wrote since, or the batch does not follow what this Store holds.
func (s *Store) Write(ctx context.Context, l cluster.Lease, e *session.Entry) error {
	if err := validate(e); err != nil {
		return err
	}
	return s.change(ctx, l, func(r *record) (*record, error) { return r.apply(e) })
}

// Renew extends the lease by LeaseTTL and the state by ResumeWindow, for a
// session that has nothing to write: it rewrites the state as Write does.
// It returns cluster.ErrFenced if the session was taken over,
// cluster.ErrNoState, cluster.ErrStateVersion, cluster.ErrStateCorrupt,
// cluster.ErrInvalidSessionID, or an error wrapping
// cluster.ErrStateUnavailable.
func (s *Store) Renew(ctx context.Context, l cluster.Lease) error {
	return s.change(ctx, l, func(r *record) (*record, error) {
		n := *r
		return &n, nil
	})
}

// Release ends the lease at once and for good (the state stays, for
// ResumeWindow from now), so that another node may take the session over
// without waiting for LeaseTTL: what a node that shuts down gracefully
// does. A later Write, Renew, Release or Delete with l, such as a write
// that was in flight, gets cluster.ErrFenced and changes nothing. Errors
// as for Renew.
func (s *Store) Release(ctx context.Context, l cluster.Lease) error {
	err := s.change(ctx, l, func(r *record) (*record, error) {
		n := *r
		n.released = true
		return &n, nil
	})
	s.forget(l.ID)
	return err
}

// Delete removes the session's state and lease, once the session has
// ended: a purge of its key, compared and set on the revision as Write
// does. Errors as for Renew.
func (s *Store) Delete(ctx context.Context, l cluster.Lease) error {
	if err := checkID(l.ID); err != nil {
		return err
	}
	done, err := s.turn(ctx, l.ID)
	if err != nil {
		return err
	}
	defer done()
	defer s.forget(l.ID)
	for range casAttempts {
		cur, _, err := s.fenced(ctx, l)
		if err != nil {
			return err
		}
		err = s.kv.Purge(ctx, l.ID, jetstream.LastRevision(cur.rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			s.forget(l.ID)
			continue
		}
		if err != nil {
			return unavailable(ctx, err)
		}
		return nil
	}
	return fmt.Errorf("%w: session %s changed %d times during Delete", cluster.ErrStateUnavailable, l.ID, casAttempts)
}

// change replaces the state of l's session with what fn makes of it, if l's
// epoch is still the session's: a compare-and-set on the revision this
// Store holds, or on the one it reads when it holds none or the set finds
// the state changed.
func (s *Store) change(ctx context.Context, l cluster.Lease, fn func(*record) (*record, error)) error {
	if err := checkID(l.ID); err != nil {
		return err
	}
	done, err := s.turn(ctx, l.ID)
	if err != nil {
		return err
	}
	defer done()
	for range casAttempts {
		cur, cached, err := s.fenced(ctx, l)
		if err != nil {
			return err
		}
		rec, err := fn(cur.rec)
		if err != nil && cached {
			// Another Store may have written since (a lease is a value):
			// only the stored state may refuse the change.
			s.forget(l.ID)
			continue
		}
		if err != nil {
			return err
		}
		next, err := s.update(ctx, l.ID, cur.rev, rec)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			s.forget(l.ID)
			continue
		}
		if err != nil {
			s.forget(l.ID)
			return err
		}
		s.remember(l.ID, next)
		return nil
	}
	return fmt.Errorf("%w: session %s changed %d times during a write", cluster.ErrStateUnavailable, l.ID, casAttempts)
}

// fenced returns the state of l's session, the one this Store holds if it
// may still be current (cached reports so), else the one stored;
// cluster.ErrFenced if its epoch is not l's, or l was released.
func (s *Store) fenced(ctx context.Context, l cluster.Lease) (h *held, cached bool, err error) {
	h = s.cached(l.ID)
	cached = h != nil && h.rec.epoch == l.Epoch && !s.expired(h.written)
	if !cached {
		if h, err = s.load(ctx, l.ID); err != nil {
			s.forget(l.ID)
			return nil, false, err
		}
	}
	if h.rec.epoch != l.Epoch || h.rec.released {
		// Taken over, or released: a released lease never comes back.
		s.forget(l.ID)
		return nil, false, cluster.ErrFenced
	}
	return h, cached, nil
}

// update sets the session's value to rec if its revision is still rev. It
// returns an error wrapping jetstream.ErrKeyRevisionMismatch when it is not
// (the state changed, or expired), or one wrapping
// cluster.ErrStateUnavailable.
func (s *Store) update(ctx context.Context, id string, rev uint64, rec *record) (*held, error) {
	start := time.Now()
	next, err := s.kv.Update(ctx, id, rec.encode(), rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, err
	}
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	return &held{rev: next, rec: rec, written: start}, nil
}

// load reads the session's stored state. It returns cluster.ErrNoState when
// there is none or it expired, cluster.ErrStateVersion,
// cluster.ErrStateCorrupt, or an error wrapping cluster.ErrStateUnavailable.
// The held it returns has the time the server stored the value as written.
func (s *Store) load(ctx context.Context, id string) (*held, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, cluster.ErrNoState
	}
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	if s.expired(e.Created()) {
		return nil, cluster.ErrNoState
	}
	rec, err := decode(e.Value())
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", id, err)
	}
	return &held{rev: e.Revision(), rec: rec, written: e.Created()}, nil
}

// expired reports whether state written at t has outlived ResumeWindow.
// The bucket's TTL removes it then; this check covers the moments before
// the server does.
func (s *Store) expired(t time.Time) bool { return !time.Now().Before(t.Add(s.window)) }

// unavailable wraps err, a failure to reach JetStream or to be served,
// with cluster.ErrStateUnavailable, and with ctx's error if ctx ended.
func unavailable(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", err, cerr)
	}
	return fmt.Errorf("%w: %w", cluster.ErrStateUnavailable, err)
}

// checkID returns cluster.ErrInvalidSessionID for an id that is not a
// valid key: up to MaxIDBytes ASCII letters, digits, "-", "_", "=" and
// dots, with no empty element between dots.
func checkID(id string) error {
	if id == "" || len(id) > MaxIDBytes {
		return fmt.Errorf("%w: %d bytes", cluster.ErrInvalidSessionID, len(id))
	}
	prev := byte('.')
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=' ||
			c == '.' && prev != '.'
		if !ok {
			return fmt.Errorf("%w: %q", cluster.ErrInvalidSessionID, id)
		}
		prev = c
	}
	if prev == '.' {
		return fmt.Errorf("%w: %q", cluster.ErrInvalidSessionID, id)
	}
	return nil
}
