package natsstate

import (
	"context"
	"sync"

	"github.com/tetherkit/tether/cluster"
)

// renewConcurrency bounds how many renewals of one RenewAll are in flight
// at once on the connection.
const renewConcurrency = 64

// RenewAll renews many leases at once, as Renew does each: the renewals
// go out together on the connection, up to 64 in flight, so that a node's
// leases take about one round trip per 64 sessions. A node renews all the
// sessions it owns this way every LeaseTTL/3 or so. It returns one error
// per lease, nil for those renewed: cluster.ErrFenced for a session taken
// over (stop serving it), cluster.ErrNoState, cluster.ErrStateVersion,
// cluster.ErrStateCorrupt, cluster.ErrInvalidSessionID, or an error
// wrapping cluster.ErrStateUnavailable.
func (s *Store) RenewAll(ctx context.Context, leases []cluster.Lease) []error {
	errs := make([]error, len(leases))
	sem := make(chan struct{}, renewConcurrency)
	var wg sync.WaitGroup
	for i, l := range leases {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = s.Renew(ctx, l)
		})
	}
	wg.Wait()
	return errs
}
