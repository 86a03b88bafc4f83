package redisstate

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/tetherkit/tether/cluster"
)

// RenewAll renews many leases at once, as Renew does each, in one pipeline: one
// round trip on a single Redis (a ClusterClient sends one pipeline per shard).
// A node renews all the sessions it owns this way every LeaseTTL/3 or so. It
// returns one error per lease, nil for those renewed: cluster.ErrFenced for a
// session taken over (stop serving it), cluster.ErrNoState,
// cluster.ErrStateVersion, cluster.ErrStateCorrupt,
// cluster.ErrInvalidSessionID, or an error wrapping
// cluster.ErrStateUnavailable.
func (s *Store) RenewAll(ctx context.Context, leases []cluster.Lease) []error {
	errs := make([]error, len(leases))
	args := make([][]any, len(leases))
	for i, l := range leases {
		if errs[i] = checkID(l.ID); errs[i] == nil {
			args[i] = []any{leaseValue(l), s.lease, s.window}
		}
	}
	return s.pipeline(ctx, renewScript, leases, args, errs)
}

// WriteAll applies many writes at once, each as Write does, in one pipeline:
// one round trip on a single Redis (a ClusterClient sends one pipeline per
// shard). A durable node coalesces the writes its sessions make at the same
// time this way (cluster.StateBatchWriter). It returns one error per write,
// nil for those stored, with Write's errors; each is applied on its own.
func (s *Store) WriteAll(ctx context.Context, writes []cluster.StateWrite) []error {
	errs := make([]error, len(writes))
	args := make([][]any, len(writes))
	leases := make([]cluster.Lease, len(writes))
	for i, w := range writes {
		leases[i] = w.Lease
		if errs[i] = checkID(w.Lease.ID); errs[i] == nil {
			args[i], errs[i] = s.writeArgs(w.Lease, w.Entry)
		}
	}
	return s.pipeline(ctx, writeScript, leases, args, errs)
}

var _ cluster.StateBatchWriter = (*Store)(nil)

// pipeline runs script, which begins with check(epoch), once for each lease
// whose errs entry is nil, with its args after the epoch, in one pipeline,
// and sets errs of the failed ones.
func (s *Store) pipeline(ctx context.Context, script *redis.Script, leases []cluster.Lease, args [][]any, errs []error) []error {
	version := strconv.Itoa(Version)
	for attempt := 0; ; attempt++ {
		cmds := make([]*redis.Cmd, len(leases))
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, l := range leases {
				if errs[i] == nil {
					a := append([]any{version, strconv.FormatUint(l.Epoch, 10)}, args[i]...)
					cmds[i] = script.EvalSha(ctx, p, s.keys(l.ID), a...)
				}
			}
			return nil
		})
		if err != nil && attempt == 0 && hasNoScript(cmds) {
			// Redis has not cached the script (it restarted, or this is
			// the first call): load it and send the pipeline again.
			if err := script.Load(ctx, s.client).Err(); err != nil {
				return fill(errs, s.mapError(ctx, err))
			}
			continue
		}
		for i, c := range cmds {
			if c != nil && c.Err() != nil {
				errs[i] = s.mapError(ctx, c.Err())
			}
		}
		return errs
	}
}

func hasNoScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if c != nil && c.Err() != nil && strings.HasPrefix(c.Err().Error(), "NOSCRIPT") {
			return true
		}
	}
	return false
}

// fill sets err for every lease that has no error yet.
func fill(errs []error, err error) []error {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}
