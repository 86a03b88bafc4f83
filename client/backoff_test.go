package client

import (
	"testing"
	"time"
)

var backoffTests = []struct {
	round int
	rand  float64
	want  time.Duration
}{
	{0, 0, 50 * time.Millisecond},
	{0, 0.5, 75 * time.Millisecond},
	{1, 0, 100 * time.Millisecond},
	{2, 0, 200 * time.Millisecond},
	{3, 0.999999, 800 * time.Millisecond},
	{4, 0, 500 * time.Millisecond}, // capped at max
	{1000, 0, 500 * time.Millisecond},
}

func TestBackoffDelay(t *testing.T) {
	for _, tt := range backoffTests {
		b := backoff{min: 100 * time.Millisecond, max: time.Second, rand: func() float64 { return tt.rand }}
		got := b.delay(tt.round)
		if got.Round(time.Millisecond) != tt.want {
			t.Errorf("delay(%d) with rand %v = %v, want %v", tt.round, tt.rand, got, tt.want)
		}
	}
}

func TestBackoffDelayJitterBounds(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for round := range 10 {
		d := 100 * time.Millisecond << round
		d = min(d, 10*time.Second)
		for range 50 {
			got := b.delay(round)
			if got < d/2 || got >= d {
				t.Fatalf("delay(%d) = %v, want in [%v, %v)", round, got, d/2, d)
			}
		}
	}
}
