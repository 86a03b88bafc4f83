package cluster

import (
	"context"

	"github.com/tetherkit/tether/session"
)

// StateBatchWriter is implemented by a StateStore that can apply the writes
// of many sessions in one round trip (package redisstate's *Store: one
// pipeline). It is apart from StateStore, which does not change: a durable
// node whose store implements it coalesces the writes its sessions make
// at the same time, sending those that wait while others are in flight in
// one WriteAll.
type StateBatchWriter interface {
	// WriteAll applies each write as StateStore.Write does, each on its
	// own (one may fail while the others are stored), and returns one
	// error per write, nil for those stored, with Write's errors.
	WriteAll(ctx context.Context, writes []StateWrite) []error
}

// StateWrite is one write of StateBatchWriter.WriteAll: Entry, applied
// with Lease.
type StateWrite struct {
	Lease Lease
	Entry *session.Entry
}
