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
	for i, l := range leases {
		errs[i] = checkID(l.ID)
	}
	for attempt := 0; ; attempt++ {
		cmds := make([]*redis.Cmd, len(leases))
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, l := range leases {
				if errs[i] == nil {
					cmds[i] = renewScript.EvalSha(ctx, p, s.keys(l.ID), strconv.Itoa(Version), strconv.FormatUint(l.Epoch, 10), leaseValue(l), s.lease, s.window)
				}
			}
			return nil
		})
		if err != nil && attempt == 0 && hasNoScript(cmds) {
			// Redis has not cached the script (it restarted, or this is
			// the first renewal): load it and send the pipeline again.
			if err := renewScript.Load(ctx, s.client).Err(); err != nil {
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
