package natsstate

import (
	"context"
	"time"
)

// sessionEntry is what a Store keeps of one session: the turn its calls
// take, and the state it last wrote or read while it holds the session.
type sessionEntry struct {
	turn  chan struct{} // holds a token while a call has the turn
	users int           // calls that have or wait for the turn; guarded by Store.mu
	held  *held         // guarded by Store.mu; nil when none
}

// held is the state a Store last wrote or read for a session it holds.
type held struct {
	rev     uint64    // the value's revision
	rec     *record   // the value
	written time.Time // when the write that made it began (local clock), or the server stored it
}

// turn waits for the session's turn, or for ctx to end (an error wrapping
// cluster.ErrStateUnavailable, as for a store that does not answer in
// time), and returns the function that ends the turn.
func (s *Store) turn(ctx context.Context, id string) (done func(), err error) {
	s.mu.Lock()
	e := s.sessions[id]
	if e == nil {
		e = &sessionEntry{turn: make(chan struct{}, 1)}
		s.sessions[id] = e
	}
	e.users++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		if e.users--; e.users == 0 && e.held == nil {
			delete(s.sessions, id)
		}
		s.mu.Unlock()
	}
	select {
	case e.turn <- struct{}{}:
		return func() { <-e.turn; release() }, nil
	case <-ctx.Done():
		release()
		return nil, unavailable(ctx, ctx.Err())
	}
}

// cached returns the state the Store holds for the session, or nil.
func (s *Store) cached(id string) *held {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.sessions[id]; e != nil {
		return e.held
	}
	return nil
}

// remember keeps h as the session's state.
func (s *Store) remember(id string, h *held) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sessions[id]
	if e == nil {
		e = &sessionEntry{turn: make(chan struct{}, 1)}
		s.sessions[id] = e
	}
	e.held = h
}

// forget drops the session's state, and the entry when no call uses it.
func (s *Store) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.sessions[id]; e != nil {
		e.held = nil
		if e.users == 0 {
			delete(s.sessions, id)
		}
	}
}
