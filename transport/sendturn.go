package transport

import (
	"context"
	"sync"
)

// A session takes one delivery at a time, and a send request whose messages
// wait for room in the session's queue holds its body meanwhile: without a
// bound, a client sending many requests at once to a session whose
// application reads slowly would make the server hold a body for each
// (MaxBodyBytes apiece, far beyond MaxQueuedBytes). So the send requests of
// one session take turns, and the newest supersedes the one waiting before
// it: that one stops waiting and answers 503 try again, as when its client
// goes away. A client sends one request at a time; an earlier one still
// waiting on the server is one its client gave up. At most two bodies of a
// session's sends are held while their messages wait: the one delivering
// and the newest.

// sendTurn is the turn of one session's send requests.
type sendTurn struct {
	turn   chan struct{}      // holds a token while a request delivers
	newest context.CancelFunc // supersedes the newest request (guarded by sendTurns.mu)
	users  int                // requests holding or waiting for the turn (guarded by sendTurns.mu)
}

// sendTurns holds the turns of sessions whose send requests are delivering
// or waiting to, by session id.
var sendTurns = struct {
	mu sync.Mutex
	m  map[string]*sendTurn
}{m: make(map[string]*sendTurn)}

// takeSendTurn supersedes the request of the session id that arrived last,
// if it is still waiting or delivering, and waits for the turn. It returns
// the context to deliver with, which ends when a newer request supersedes
// this one, and the function that gives the turn back; or ctx's error, when
// ctx ends or a newer request supersedes this one before its turn.
func takeSendTurn(ctx context.Context, id string) (context.Context, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	sendTurns.mu.Lock()
	t := sendTurns.m[id]
	if t == nil {
		t = &sendTurn{turn: make(chan struct{}, 1)}
		sendTurns.m[id] = t
	}
	if t.newest != nil {
		t.newest()
	}
	t.newest = cancel
	t.users++
	sendTurns.mu.Unlock()
	leave := func() {
		cancel()
		sendTurns.mu.Lock()
		if t.users--; t.users == 0 {
			delete(sendTurns.m, id)
		}
		sendTurns.mu.Unlock()
	}
	select {
	case t.turn <- struct{}{}:
		return ctx, func() { <-t.turn; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, nil, ctx.Err()
	}
}
