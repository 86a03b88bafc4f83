package tether

import (
	"net/http"
	"sync"
)

// clientCounts counts the sessions each client holds, for
// Options.MaxSessionsPerClient.
type clientCounts struct {
	max int // no limit when 0

	mu     sync.Mutex
	counts map[string]int // sessions by client key; guarded by mu
	most   int            // most keys counts has held since it was made; guarded by mu
}

// clientKey returns the key r's sessions are counted under: "" when there
// is no per-client limit.
func (srv *Server) clientKey(r *http.Request) string {
	if srv.clients.max <= 0 || srv.opts.ClientKey == nil {
		return ""
	}
	return srv.opts.ClientKey(r)
}

// acquire counts one more session for key and returns the function that
// counts it off (once, however often it is called), or reports false when
// key holds max sessions already. The empty key is not counted.
func (c *clientCounts) acquire(key string) (release func(), ok bool) {
	if key == "" {
		return func() {}, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	if c.counts[key] >= c.max {
		return nil, false
	}
	c.counts[key]++
	c.most = max(c.most, len(c.counts))
	var once sync.Once
	return func() { once.Do(func() { c.release(key) }) }, true
}

func (c *clientCounts) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[key]--
	if c.counts[key] > 0 {
		return
	}
	delete(c.counts, key)
	// A Go map never shrinks: after a flood of clients has gone, a map
	// of the right size takes the place of the one that held them.
	if c.most >= 1024 && len(c.counts) <= c.most/4 {
		smaller := make(map[string]int, len(c.counts))
		for k, n := range c.counts {
			smaller[k] = n
		}
		c.counts, c.most = smaller, len(c.counts)
	}
}
