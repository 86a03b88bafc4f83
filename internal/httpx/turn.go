package httpx

import (
	"context"
	"sync"
)

// A request that waits for its session to take what it carries holds what
// it carries meanwhile: without a bound, a client sending many at once to a
// session whose application reads slowly would make the server hold a body
// for each (MaxBodyBytes apiece, far beyond the session's queue). So such
// requests of one session take turns (TakeTurn), and the newest supersedes
// the one waiting before it: that one stops waiting and answers 503 try
// again, as when its client goes away. A client sends one request at a
// time; an earlier one still waiting on the server is one it gave up.

// turn is the turn of one session's requests.
type turn struct {
	token  chan struct{}      // holds a token while a request has the turn
	newest context.CancelFunc // supersedes the newest request (guarded by turns.mu)
	users  int                // requests holding or waiting for the turn (guarded by turns.mu)
}

// turns holds the turns of sessions whose requests are delivering or
// waiting to, by key.
var turns = struct {
	mu sync.Mutex
	m  map[string]*turn
}{m: make(map[string]*turn)}

// TakeTurn supersedes the request of the session key that arrived last, if
// it is still waiting or holds the turn, and waits for the turn. It returns
// the context to deliver with, which ends when a newer request supersedes
// this one, and the function that gives the turn back; or ctx's error, when
// ctx ends or a newer request supersedes this one before its turn.
func TakeTurn(ctx context.Context, key string) (context.Context, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	turns.mu.Lock()
	t := turns.m[key]
	if t == nil {
		t = &turn{token: make(chan struct{}, 1)}
		turns.m[key] = t
	}
	if t.newest != nil {
		t.newest()
	}
	t.newest = cancel
	t.users++
	turns.mu.Unlock()
	leave := func() {
		cancel()
		turns.mu.Lock()
		if t.users--; t.users == 0 {
			delete(turns.m, key)
		}
		turns.mu.Unlock()
	}
	select {
	case t.token <- struct{}{}:
		return ctx, func() { <-t.token; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, nil, ctx.Err()
	}
}
