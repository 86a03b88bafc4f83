package transport_test

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/tetherkit/tether/transport"
)

var rawCountQueries = []string{
	"", "seq=5", "session=a&token=b&received=12&seq=3", "seq=", "seq", "seq=05", "seq=x",
	"seq=1&seq=2", "s%65q=7", "seq=%37", "seq=1;x=2", "a=+&seq=4", "&&seq=9&", "seq=18446744073709551616",
}

// TestParseRawCount checks that ParseRawCount reads a raw query exactly as
// ParseCount reads the url.Values of it.
func TestParseRawCount(t *testing.T) {
	for _, q := range rawCountQueries {
		checkRawCount(t, q)
	}
}

func checkRawCount(t *testing.T, rawQuery string) {
	t.Helper()
	for _, name := range []string{"seq", "received"} {
		values, _ := url.ParseQuery(rawQuery)
		n, bad := transport.ParseCount(values, name, 7)
		rn, rbad := transport.ParseRawCount(rawQuery, name, 7)
		if n != rn || bad != rbad {
			t.Errorf("ParseRawCount(%q, %q) = %d, %q; ParseCount = %d, %q", rawQuery, name, rn, rbad, n, bad)
		}
	}
}

func FuzzParseRawCount(f *testing.F) {
	for _, q := range rawCountQueries {
		f.Add(q)
	}
	f.Fuzz(checkRawCount)
}

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
		got, bad := transport.ParseHeartbeat(q, c.negotiated)
		if got != c.want || bad != c.bad {
			t.Errorf("ParseHeartbeat(%q, %v) = %v, %q; want %v, %q", c.query, c.negotiated, got, bad, c.want, c.bad)
		}
	}
}

// TestOriginForwardedProto checks that X-Forwarded-Proto counts for the
// same-origin check only when the policy trusts it.
func TestOriginForwardedProto(t *testing.T) {
	for _, c := range []struct {
		trust       bool
		origin, fwd string
		want        bool
	}{
		{false, "http://app.example", "", true},
		{false, "https://app.example", "", false},
		{false, "https://app.example", "https", false},
		{true, "https://app.example", "https", true},
		{true, "http://app.example", "https", false},
		{true, "https://app.example", "", false},
		{true, "http://app.example", "http", true},
	} {
		r := httptest.NewRequest("POST", "http://app.example/rt/negotiate?v=1", nil)
		r.Header.Set("Origin", c.origin)
		if c.fwd != "" {
			r.Header.Set("X-Forwarded-Proto", c.fwd)
		}
		if got := transport.NewOriginPolicy(nil, c.trust).Allowed(r); got != c.want {
			t.Errorf("trust %v, Origin %s, X-Forwarded-Proto %q: allowed %v, want %v", c.trust, c.origin, c.fwd, got, c.want)
		}
	}
}

func TestWantsCompact(t *testing.T) {
	for q, want := range map[string]bool{
		"compact=1": true, "session=a&compact=1&token=b": true, "a=1&compact=1": true,
		"": false, "compact=0": false, "compact=": false, "xcompact=1": false, "compact=11": false,
	} {
		r := httptest.NewRequest("GET", "/rt/sse?"+q, nil)
		if got := transport.WantsCompact(r); got != want {
			t.Errorf("WantsCompact(%q) = %v, want %v", q, got, want)
		}
	}
}
