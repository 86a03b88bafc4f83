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
	"github.com/tetherkit/tether/session"
)

// Version is the format version of the state this package writes (the
// state hash's field v). State of any other version gives ErrVersion.
const Version = 1

// DefaultLeaseTTL is the LeaseTTL of a nil or zero Options.
const DefaultLeaseTTL = 5 * time.Second

// MaxIDBytes is the longest session id a Store accepts.
const MaxIDBytes = 128

var (
	// ErrUnavailable is wrapped, with the cause, by the errors returned
	// when Redis cannot be reached or cannot serve (a connection refused or
	// lost, a deadline, OOM, LOADING...). A write may or may not have
	// happened: writing the same Batch again is harmless.
	ErrUnavailable = errors.New("redisstate: Redis unavailable")
	// ErrNotFound is returned by TakeOver, Load, Write, Renew, Release and
	// Delete when Redis holds no state for the session: it never was
	// durable, it was deleted, or it expired (ResumeWindow after its owner's
	// last write or Renew).
	ErrNotFound = errors.New("redisstate: no state for the session")
	// ErrExists is returned by Create when the session has state already.
	ErrExists = errors.New("redisstate: the session has state already")
	// ErrOwned is wrapped by the *OwnedError TakeOver returns when another
	// node holds a lease on the session that has not lapsed.
	ErrOwned = errors.New("redisstate: the session is owned by another node")
	// ErrFenced is returned by Write, Renew, Release and Delete when the
	// lease's epoch is no longer the session's: another node took the
	// session over, and the caller must stop serving it. Nothing was
	// written.
	ErrFenced = errors.New("redisstate: the lease was taken over")
	// ErrBadToken is returned by TakeOver when the token is not the
	// session's. Nothing was changed.
	ErrBadToken = errors.New("redisstate: wrong token")
	// ErrOutOfOrder is returned by Write for a batch that does not follow
	// the stored state: its first message leaves a gap after the stored
	// count, or it acknowledges messages never sent. Nothing was written.
	ErrOutOfOrder = errors.New("redisstate: batch does not follow the stored state")
	// ErrVersion is wrapped by the errors returned for state written in
	// another format version (not Version). Nothing was changed.
	ErrVersion = errors.New("redisstate: state of another format version")
	// ErrCorrupt is wrapped by the errors returned for state that does not
	// decode: missing or malformed fields, keys of the wrong type, messages
	// out of order. Nothing was changed by the call.
	ErrCorrupt = errors.New("redisstate: corrupt state")
	// ErrInvalidID is returned for a session id that is empty, longer than
	// MaxIDBytes, or holds a byte outside printable ASCII or one of "{}".
	ErrInvalidID = errors.New("redisstate: invalid session id")
	// ErrInvalidBatch is returned by Write for a Batch whose First is 0
	// while it has messages, or with a message neither Text nor Binary.
	ErrInvalidBatch = errors.New("redisstate: invalid batch")
)

// OwnedError is returned by TakeOver when another node's lease on the
// session has not lapsed: the caller relays to Node, or tries again after
// LeaseTTL if Node is gone. It wraps ErrOwned.
type OwnedError struct {
	// Node is the id of the node holding the lease.
	Node string
}

// Error returns the error's text.
func (e *OwnedError) Error() string { return ErrOwned.Error() + ": " + e.Node }

// Unwrap returns ErrOwned.
func (e *OwnedError) Unwrap() error { return ErrOwned }

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
	// last write or Renew: the server's session.Config.ResumeWindow.
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
}

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
	}, nil
}

// Lease is a node's ownership of one session, valid while its Epoch is the
// session's. It is a value: the node keeps it with the session and passes it
// to every write.
type Lease struct {
	// ID is the session's id.
	ID string
	// Node is the owning node's id.
	Node string
	// Epoch grows by one at each change of owner; 1 at Create.
	Epoch uint64
}

func (l Lease) value() string { return strconv.FormatUint(l.Epoch, 10) + " " + l.Node }

// Create stores a new session's state, owned by node with epoch 1: counters
// at 0, no messages, no topics, the token's hash and the application's
// negotiate data info (opaque; TakeOver returns it). It returns ErrExists if
// the session has state already, ErrInvalidID, or an error wrapping
// ErrUnavailable.
func (s *Store) Create(ctx context.Context, id, token, node string, info []byte) (Lease, error) {
	if err := checkID(id); err != nil {
		return Lease{}, err
	}
	l := Lease{ID: id, Node: node, Epoch: 1}
	err := s.run(ctx, createScript, id, hashToken(token), l.value(), s.lease, s.window, info).Err()
	if err != nil {
		return Lease{}, s.mapError(ctx, err)
	}
	return l, nil
}

// Renew extends the lease by LeaseTTL and the state by ResumeWindow, for a
// session that has nothing to write. It returns ErrFenced if the session was
// taken over, ErrNotFound, ErrVersion, ErrCorrupt, or an error wrapping
// ErrUnavailable.
func (s *Store) Renew(ctx context.Context, l Lease) error {
	return s.fenced(ctx, renewScript, l, l.value(), s.lease, s.window)
}

// Release ends the lease at once (the state stays), so that another node
// may take the session over without waiting for LeaseTTL: what a node that
// shuts down gracefully does. Errors as for Renew.
func (s *Store) Release(ctx context.Context, l Lease) error {
	return s.fenced(ctx, releaseScript, l)
}

// Delete removes the session's state and lease, once the session has ended.
// Errors as for Renew.
func (s *Store) Delete(ctx context.Context, l Lease) error {
	return s.fenced(ctx, deleteScript, l)
}

// fenced runs a script that begins with check(epoch).
func (s *Store) fenced(ctx context.Context, script *redis.Script, l Lease, args ...any) error {
	if err := checkID(l.ID); err != nil {
		return err
	}
	args = append([]any{strconv.FormatUint(l.Epoch, 10)}, args...)
	if err := s.run(ctx, script, l.ID, args...).Err(); err != nil {
		return s.mapError(ctx, err)
	}
	return nil
}

// TakeOver makes node the session's owner with a new epoch, if the token is
// the session's and no other node's lease is current, and returns the lease
// and the state: Restore from it. From then on the previous owner's writes
// get ErrFenced. If node holds the current lease already, TakeOver renews it
// and returns it with the state (a retried TakeOver is harmless).
//
// It returns an *OwnedError (wrapping ErrOwned) when another node's lease
// has not lapsed, ErrBadToken, ErrNotFound, ErrVersion, ErrCorrupt,
// ErrInvalidID, or an error wrapping ErrUnavailable: then the
// session may or may not have been taken over, and calling TakeOver again
// tells (it returns the lease if this node got it).
func (s *Store) TakeOver(ctx context.Context, id, token, node string) (Lease, *State, error) {
	if err := checkID(id); err != nil {
		return Lease{}, nil, err
	}
	reply, err := s.run(ctx, takeOverScript, id, hashToken(token), node, s.lease, s.window).Result()
	if err != nil {
		return Lease{}, nil, s.mapError(ctx, err)
	}
	epoch, st, err := parseState(id, reply)
	if err != nil {
		return Lease{}, nil, err
	}
	return Lease{ID: id, Node: node, Epoch: epoch}, st, nil
}

// Load returns the session's state and its current epoch, changing nothing:
// for inspection, since only the owner's view is authoritative. Errors as
// for TakeOver, besides ErrOwned and ErrBadToken.
func (s *Store) Load(ctx context.Context, id string) (*State, uint64, error) {
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

// Owner returns the id of the node holding a current lease on the session,
// or "" when none does (the owner is gone, or there is no such session).
// It returns ErrInvalidID, ErrCorrupt or an error wrapping
// ErrUnavailable.
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
		return "", fmt.Errorf("%w: lease %q", ErrCorrupt, v)
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
// anything else into one wrapping ErrUnavailable.
func (s *Store) mapError(ctx context.Context, err error) error {
	var rerr redis.Error
	if !errors.As(err, &rerr) || errors.Is(err, redis.Nil) {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", err, cerr)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	msg := strings.TrimPrefix(rerr.Error(), "ERR ")
	word, rest, _ := strings.Cut(msg, " ")
	switch word {
	case "TETHER_NOTFOUND":
		return ErrNotFound
	case "TETHER_EXISTS":
		return ErrExists
	case "TETHER_FENCED":
		return ErrFenced
	case "TETHER_TOKEN":
		return ErrBadToken
	case "TETHER_OWNED":
		return &OwnedError{Node: rest}
	case "TETHER_ORDER":
		return fmt.Errorf("%w: %s", ErrOutOfOrder, rest)
	case "TETHER_VERSION":
		return fmt.Errorf("%w: version %q, want %d", ErrVersion, firstLine(rest), Version)
	case "TETHER_CORRUPT", "WRONGTYPE":
		return fmt.Errorf("%w: %s", ErrCorrupt, firstLine(msg))
	}
	// OOM, READONLY, LOADING, BUSY, CLUSTERDOWN...: Redis cannot serve.
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
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
		return fmt.Errorf("%w: %d bytes", ErrInvalidID, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '{' || c == '}' {
			return fmt.Errorf("%w: %q", ErrInvalidID, id)
		}
	}
	return nil
}
