package session

import (
	"crypto/subtle"
	"maps"
	"sync"
)

// Store is where a server finds sessions: it keeps the sessions this
// process holds, and for each request finds the Endpoint that serves the
// session the request names. MemoryStore, the one-process default, finds
// only the sessions it keeps; a store shared by several processes may also
// find sessions held by another one and serve them through an Endpoint
// that relays to it.
//
// The server calls Add once for each session it creates, and Remove when
// that session has finished (New's onFinish, with the session's lock held:
// Remove must not call back into it), or after Add when it finished before
// Add returned. Implementations must be safe for
// concurrent use.
type Store interface {
	// Add stores s, or returns ErrTooManySessions.
	Add(s *Local) error
	// Lookup returns the Endpoint of the session with the public id whose
	// token matches, or ErrUnknownSession: a wrong token and an unknown id
	// are not told apart, in result or in time.
	Lookup(id, token string) (Endpoint, error)
	// Remove forgets s; removing a session not stored does nothing.
	Remove(s *Local)
	// Len returns how many sessions this process holds.
	Len() int
	// Sessions returns the sessions this process holds now.
	Sessions() []*Local
}

// MemoryStore is a Store in this process's memory: the one-node default.
// Its memory follows the sessions it holds: after a flood of sessions has
// gone, it lets go of what held them (a Go map never shrinks by itself).
type MemoryStore struct {
	max int

	mu       sync.RWMutex
	sessions map[string]*Local // guarded by mu
	peak     int               // most sessions held since the map was made; guarded by mu
}

// shrinkMin is the fewest sessions a map must have held before Remove
// rebuilds it smaller.
const shrinkMin = 1024

// NewMemoryStore returns a store that holds at most max sessions (no bound
// when max <= 0).
func NewMemoryStore(max int) *MemoryStore {
	return &MemoryStore{max: max, sessions: make(map[string]*Local)}
}

// Add implements Store.
func (m *MemoryStore) Add(s *Local) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.max > 0 && len(m.sessions) >= m.max {
		return ErrTooManySessions
	}
	m.sessions[s.id] = s
	m.peak = max(m.peak, len(m.sessions))
	return nil
}

// decoyToken is compared against when the id is unknown, so that an unknown
// id costs the same time as a wrong token.
var decoyToken = randomID()

// Lookup implements Store.
func (m *MemoryStore) Lookup(id, token string) (Endpoint, error) {
	m.mu.RLock()
	s, ok := m.sessions[id]
	m.mu.RUnlock()
	want := decoyToken
	if ok {
		want = s.token
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(token)) != 1 || !ok {
		return nil, ErrUnknownSession
	}
	return s, nil
}

// Remove implements Store.
func (m *MemoryStore) Remove(s *Local) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[s.id] != s {
		return
	}
	delete(m.sessions, s.id)
	if n := len(m.sessions); m.peak >= shrinkMin && n <= m.peak/4 {
		// Down to a quarter of the peak: a map of the right size, copied
		// in time amortized over the removals since the peak.
		fresh := make(map[string]*Local, n)
		maps.Copy(fresh, m.sessions)
		m.sessions, m.peak = fresh, n
	}
}

// Len implements Store.
func (m *MemoryStore) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.sessions)
}

// Sessions implements Store.
func (m *MemoryStore) Sessions() []*Local {
	m.mu.RLock()
	defer m.mu.RUnlock()
	all := make([]*Local, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	return all
}
