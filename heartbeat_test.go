package tether

import (
	"net/url"
	"testing"
	"time"
)

var parseHeartbeatTests = []struct {
	query      string
	negotiated time.Duration
	want       time.Duration
	bad        string
}{
	{"", 25 * time.Second, 25 * time.Second, ""},
	{"heartbeatMs=2500", 25 * time.Second, 2500 * time.Millisecond, ""},
	{"heartbeatMs=1000", 25 * time.Second, time.Second, ""},
	{"heartbeatMs=999", 25 * time.Second, time.Second, ""},
	{"heartbeatMs=1", 25 * time.Second, time.Second, ""},
	{"heartbeatMs=25000", 25 * time.Second, 25 * time.Second, ""},
	{"heartbeatMs=60000", 25 * time.Second, 25 * time.Second, ""},
	{"heartbeatMs=18446744073709551615", 25 * time.Second, 25 * time.Second, ""},
	{"heartbeatMs=500", 100 * time.Millisecond, 100 * time.Millisecond, ""},
	{"heartbeatMs=2000", 1500 * time.Millisecond, 1500 * time.Millisecond, ""},
	{"heartbeatMs=0", 25 * time.Second, 0, "invalid heartbeatMs"},
	{"heartbeatMs=", 25 * time.Second, 0, "invalid heartbeatMs"},
	{"heartbeatMs=-5", 25 * time.Second, 0, "invalid heartbeatMs"},
	{"heartbeatMs=02500", 25 * time.Second, 0, "invalid heartbeatMs"},
	{"heartbeatMs=2.5e3", 25 * time.Second, 0, "invalid heartbeatMs"},
	{"heartbeatMs=18446744073709551616", 25 * time.Second, 0, "invalid heartbeatMs"},
}

// TestParseHeartbeat: a client asks for a shorter heartbeat, never a
// longer one than negotiated nor one below the minimum, and a malformed
// value is refused.
func TestParseHeartbeat(t *testing.T) {
	for _, c := range parseHeartbeatTests {
		q, _ := url.ParseQuery(c.query)
		got, bad := parseHeartbeat(q, c.negotiated)
		if got != c.want || bad != c.bad {
			t.Errorf("parseHeartbeat(%q, %v) = %v, %q; want %v, %q", c.query, c.negotiated, got, bad, c.want, c.bad)
		}
	}
}
