package redisstate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
)

// Version is the format version of the state this package writes (the
// state hash's field v). State of any other version gives
// cluster.ErrStateVersion.
const Version = 1

// DefaultLeaseTTL is the LeaseTTL of a nil or zero Options.
const DefaultLeaseTTL = 5 * time.Second

// MaxIDBytes is the longest session id a Store accepts.
const MaxIDBytes = 128

// Options configures a Store. The zero value (or nil) gives the defaults.
type Options struct {
	// Prefix starts every key, so that Tether clusters sharing a Redis keep
	// apart. Default "tether". It may not hold "{" or "}".
	Prefix string
	// LeaseTTL is how long a lease lasts after the owner's last write or
	// Renew; an owner renews well within it (every LeaseTTL/3, say). Once it
	// lapses another node may take the session over, so it is also how long
	// a dead owner's sessions wait. Default DefaultLeaseTTL (5 s).
	LeaseTTL time.Duration
	// ResumeWindow is how long a session's state lasts after the owner's
	// last write or Renew (after a write, less at most a third of LeaseTTL:
	// see the package doc's Data layout): the server's
	// session.Config.ResumeWindow.
	// Default session.DefaultResumeWindow. It must not be shorter than
	// LeaseTTL.
	ResumeWindow time.Duration
}

// Store reads and writes sessions' state in one Redis. All methods may be
// called concurrently. It holds no state of its own besides its options;
// every call is one round trip (two the first time a script runs on a
// Redis that has not cached it).
type Store struct {
	client   redis.UniversalClient
	prefix   string
	leaseTTL time.Duration
	lease    string // LeaseTTL in ms, as the scripts take it
	window   string // ResumeWindow in ms
	refresh  string // how often, in ms, a busy session's writes set the keys' expiry again (refreshEvery)
}

// refreshEvery returns how long after a write set the expiry of a
// session's keys to ResumeWindow the next writes leave it as it is: a third
// of LeaseTTL, and at most half of what ResumeWindow has beyond LeaseTTL,
// so that the state still outlives the lease of an owner that died. The
// state therefore lasts ResumeWindow after the owner's last write less at
// most that much (after its last Renew, ResumeWindow).
func refreshEvery(leaseTTL, window time.Duration) time.Duration {
	return min(leaseTTL/3, (window-leaseTTL)/2)
}

// clock returns the writer's clock for the scripts, in ms: what they
// compare with the state's field x (see writeScript).
func clock() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }

// New returns a Store on client. It returns an error for options out of
// range: a Prefix with "{" or "}", a negative duration, or a ResumeWindow
// shorter than LeaseTTL.
func New(client redis.UniversalClient, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = "tether"
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.ResumeWindow == 0 {
		o.ResumeWindow = session.DefaultResumeWindow
	}
	switch {
	case strings.ContainsAny(o.Prefix, "{}"):
		return nil, fmt.Errorf("redisstate: Prefix %q holds a brace", o.Prefix)
	case o.LeaseTTL < time.Millisecond || o.ResumeWindow < time.Millisecond:
		return nil, fmt.Errorf("redisstate: LeaseTTL %v or ResumeWindow %v under 1 ms", o.LeaseTTL, o.ResumeWindow)
	case o.ResumeWindow < o.LeaseTTL:
		return nil, fmt.Errorf("redisstate: ResumeWindow %v shorter than LeaseTTL %v", o.ResumeWindow, o.LeaseTTL)
	}
	return &Store{
		client:   client,
		prefix:   o.Prefix,
		leaseTTL: o.LeaseTTL,
		lease:    strconv.FormatInt(o.LeaseTTL.Milliseconds(), 10),
		window:   strconv.FormatInt(o.ResumeWindow.Milliseconds(), 10),
		refresh:  strconv.FormatInt(refreshEvery(o.LeaseTTL, o.ResumeWindow).Milliseconds(), 10),
	}, nil
}

// leaseValue is the lease key's value: "<epoch> <node id>".
func leaseValue(l cluster.Lease) string { return strconv.FormatUint(l.Epoch, 10) + " " + l.Node }

var _ cluster.StateStore = (*Store)(nil)

// LeaseTTL returns the store's Options.LeaseTTL (defaults applied).
func (s *Store) LeaseTTL() time.Duration { return s.leaseTTL }

// Create stores a new session's state, owned by node with epoch 1: counters at
// 0, no messages, no topics, the token's hash and the application's negotiate
// data info (opaque; TakeOver returns it). It returns cluster.ErrStateExists if
// the session has state already, cluster.ErrInvalidSessionID, or an error
// wrapping cluster.ErrStateUnavailable.
func (s *Store) Create(ctx context.Context, id, token, node string, info []byte) (cluster.Lease, error) {
	if err := checkID(id); err != nil {
		return cluster.Lease{}, err
	}
	l := cluster.Lease{ID: id, Node: node, Epoch: 1}
	err := s.run(ctx, createScript, id, hashToken(token), leaseValue(l), s.lease, s.window, info, clock()).Err()
	if err != nil {
		return cluster.Lease{}, s.mapError(ctx, err)
	}
	return l, nil
}

// Renew extends the lease by LeaseTTL and the state by ResumeWindow, for a
// session that has nothing to write. It returns cluster.ErrFenced if the
// session was taken over, cluster.ErrNoState, cluster.ErrStateVersion,
// cluster.ErrStateCorrupt, or an error wrapping cluster.ErrStateUnavailable.
func (s *Store) Renew(ctx context.Context, l cluster.Lease) error {
	return s.fenced(ctx, renewScript, l, leaseValue(l), s.lease, s.window)
}

// Release ends the lease at once and for good (the state stays), so that
// another node may take the session over without waiting for LeaseTTL: what
// a node that shuts down gracefully does. A later Write, Renew, Release or
// Delete with l, such as a write that was in flight, gets
// cluster.ErrFenced and changes nothing. Errors as for Renew.
func (s *Store) Release(ctx context.Context, l cluster.Lease) error {
	return s.fenced(ctx, releaseScript, l)
}

// Delete removes the session's state and lease, once the session has ended.
// Errors as for Renew.
func (s *Store) Delete(ctx context.Context, l cluster.Lease) error {
	return s.fenced(ctx, deleteScript, l)
}

// fenced runs a script that begins with check(epoch).
func (s *Store) fenced(ctx context.Context, script *redis.Script, l cluster.Lease, args ...any) error {
	if err := checkID(l.ID); err != nil {
		return err
	}
	args = append([]any{strconv.FormatUint(l.Epoch, 10)}, args...)
	if err := s.run(ctx, script, l.ID, args...).Err(); err != nil {
		return s.mapError(ctx, err)
	}
	return nil
}

// TakeOver makes node the session's owner with a new epoch, if the token is the
// session's and no other node's lease is current, and returns the lease and the
// state: Restore from it. From then on the previous owner's writes get
// cluster.ErrFenced. If node holds the current lease already, TakeOver renews
// it and returns it with the state (a retried TakeOver is harmless).
//
// It returns an *cluster.OwnedError (wrapping cluster.ErrOwned) when another
// node's lease has not lapsed, cluster.ErrBadToken, cluster.ErrNoState,
// cluster.ErrStateVersion, cluster.ErrStateCorrupt,
// cluster.ErrInvalidSessionID, or an error wrapping
// cluster.ErrStateUnavailable: then the session may or may not have been taken
// over, and calling TakeOver again tells (it returns the lease if this node got
// it). State whose counters are malformed or do not match the number of
// stored messages is refused before anything changes; a message entry
// malformed in itself is found once the state is read back, after the lease
// was taken.
func (s *Store) TakeOver(ctx context.Context, id, token, node string) (cluster.Lease, *cluster.State, error) {
	if err := checkID(id); err != nil {
		return cluster.Lease{}, nil, err
	}
	reply, err := s.run(ctx, takeOverScript, id, hashToken(token), node, s.lease, s.window, clock()).Result()
	if err != nil {
		return cluster.Lease{}, nil, s.mapError(ctx, err)
	}
	epoch, st, err := parseState(id, reply)
	if err != nil {
		return cluster.Lease{}, nil, err
	}
	return cluster.Lease{ID: id, Node: node, Epoch: epoch}, st, nil
}

// Load returns the session's state and its current epoch, changing nothing:
// for inspection, since only the owner's view is authoritative. Errors as
// for TakeOver, besides cluster.ErrOwned and cluster.ErrBadToken.
func (s *Store) Load(ctx context.Context, id string) (*cluster.State, uint64, error) {
	if err := checkID(id); err != nil {
		return nil, 0, err
	}
	reply, err := s.run(ctx, loadScript, id).Result()
	if err != nil {
		return nil, 0, s.mapError(ctx, err)
	}
	epoch, st, err := parseState(id, reply)
	if err != nil {
		return nil, 0, err
	}
	return st, epoch, nil
}

// Owner returns the id of the node holding a current lease on the session, or
// "" when none does (the owner is gone, or there is no such session). It
// returns cluster.ErrInvalidSessionID, cluster.ErrStateCorrupt or an error
// wrapping cluster.ErrStateUnavailable.
func (s *Store) Owner(ctx context.Context, id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	v, err := s.client.Get(ctx, s.key(id, "lease")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", s.mapError(ctx, err)
	}
	_, node, ok := strings.Cut(v, " ")
	if !ok {
		return "", fmt.Errorf("%w: lease %q", cluster.ErrStateCorrupt, v)
	}
	return node, nil
}

// run runs script on the session's four keys, with the format version
// first in ARGV.
func (s *Store) run(ctx context.Context, script *redis.Script, id string, args ...any) *redis.Cmd {
	return script.Run(ctx, s.client, s.keys(id), append([]any{strconv.Itoa(Version)}, args...)...)
}

// keys returns the session's keys in the order the scripts take them.
func (s *Store) keys(id string) []string {
	return []string{s.key(id, "state"), s.key(id, "out"), s.key(id, "topics"), s.key(id, "lease")}
}

func (s *Store) key(id, part string) string {
	return s.prefix + ":{" + id + "}:" + part
}

// mapError turns a script's error reply into this package's errors, and
// anything else into one wrapping cluster.ErrStateUnavailable.
func (s *Store) mapError(ctx context.Context, err error) error {
	var rerr redis.Error
	if !errors.As(err, &rerr) || errors.Is(err, redis.Nil) {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", err, cerr)
		}
		return fmt.Errorf("%w: %w", cluster.ErrStateUnavailable, err)
	}
	msg := strings.TrimPrefix(rerr.Error(), "ERR ")
	word, rest, _ := strings.Cut(msg, " ")
	switch word {
	case "TETHER_NOTFOUND":
		return cluster.ErrNoState
	case "TETHER_EXISTS":
		return cluster.ErrStateExists
	case "TETHER_FENCED":
		return cluster.ErrFenced
	case "TETHER_TOKEN":
		return cluster.ErrBadToken
	case "TETHER_OWNED":
		return &cluster.OwnedError{Node: rest}
	case "TETHER_ORDER":
		return fmt.Errorf("%w: %s", cluster.ErrOutOfOrder, rest)
	case "TETHER_VERSION":
		return fmt.Errorf("%w: version %q, want %d", cluster.ErrStateVersion, firstLine(rest), Version)
	case "TETHER_CORRUPT", "WRONGTYPE":
		return fmt.Errorf("%w: %s", cluster.ErrStateCorrupt, firstLine(msg))
	}
	// OOM, READONLY, LOADING, BUSY, CLUSTERDOWN...: Redis cannot serve.
	return fmt.Errorf("%w: %w", cluster.ErrStateUnavailable, err)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 100 {
		line = line[:100]
	}
	return line
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func checkID(id string) error {
	if id == "" || len(id) > MaxIDBytes {
		return fmt.Errorf("%w: %d bytes", cluster.ErrInvalidSessionID, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '{' || c == '}' {
			return fmt.Errorf("%w: %q", cluster.ErrInvalidSessionID, id)
		}
	}
	return nil
}
