package client

import (
	"testing"
	"time"
)

// TestAckWait: an acknowledgement armed by a message waits until
// ackQuiet has passed without a message, so that a burst of messages
// closer together than that is acknowledged once, at its end; but never
// longer than the heartbeat interval after the message that armed it.
func TestAckWait(t *testing.T) {
	hb := 25 * time.Second
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tt := range []struct {
		name string
		last time.Duration // the last message, after the one that armed it at t0
		now  time.Duration
		want time.Duration
	}{
		{"one message, a quiet second later", 0, time.Second, 0},
		{"the burst goes on", 700 * time.Millisecond, time.Second, 700 * time.Millisecond},
		{"the burst has ended", 700 * time.Millisecond, 1700 * time.Millisecond, 0},
		{"near the heartbeat interval", 24800 * time.Millisecond, 24900 * time.Millisecond, 100 * time.Millisecond},
		{"at the heartbeat interval", 24900 * time.Millisecond, hb, 0},
		{"a late tick", 0, time.Minute, 0},
	} {
		c := &wsConn{hb: hb}
		c.ackFrom.Store(t0.UnixNano())
		c.lastMessage.Store(at(tt.last).UnixNano())
		if got := c.ackWait(at(tt.now)); got != tt.want {
			t.Errorf("%s: ackWait = %v, want %v", tt.name, got, tt.want)
		}
	}
}
