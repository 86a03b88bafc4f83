package client

import (
	"math/rand/v2"
	"time"
)

// backoff computes the delay between rounds of attach attempts: it starts
// at min, doubles each round up to max, and is spread by jitter so that
// clients cut at the same instant do not come back at the same instant.
type backoff struct {
	min, max time.Duration
	// rand returns a number in [0, 1); nil means math/rand/v2.Float64.
	rand func() float64
}

// delay returns the wait before round n, counting from 0: a random duration
// in [d/2, d) where d is min·2ⁿ capped at max.
func (b backoff) delay(n int) time.Duration {
	d := b.min
	for i := 0; i < n && d < b.max; i++ {
		d *= 2
	}
	if d > b.max || d <= 0 {
		d = b.max
	}
	r := b.rand
	if r == nil {
		r = rand.Float64
	}
	half := d / 2
	return half + time.Duration(r()*float64(d-half))
}
