package httpx_test

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/tetherkit/tether/internal/httpx"
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
		n, bad := httpx.ParseCount(values, name, 7)
		rn, rbad := httpx.ParseRawCount(rawQuery, name, 7)
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
		if got := httpx.NewOriginPolicy(nil, c.trust).Allowed(r); got != c.want {
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
		if got := httpx.WantsCompact(r); got != want {
			t.Errorf("WantsCompact(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestHasFlag(t *testing.T) {
	for q, want := range map[string]bool{
		"acks=1": true, "compact=1&acks=1": true, "": false, "acks=0": false, "acks": false,
		"xacks=1": false, "acks=1x": false, "ack=1": false, "acks=11": false,
	} {
		r := httptest.NewRequest("GET", "/rt/streaming?"+q, nil)
		if got := httpx.HasFlag(r, "acks"); got != want {
			t.Errorf("HasFlag(%q, acks) = %v, want %v", q, got, want)
		}
	}
}

// TestErrorOneLine checks that every error body is one line of UTF-8
// (PROTOCOL.md section 9), whatever the message holds.
func TestErrorOneLine(t *testing.T) {
	for _, tt := range []struct{ msg, want string }{
		{"unknown session", "unknown session\n"},
		{"a\r\nb\nc", "a  b c\n"},
		{"bad \xff\xfe", "bad \uFFFD\n"},
		{"", "\n"},
	} {
		w := httptest.NewRecorder()
		httpx.Error(w, 403, tt.msg)
		if got := w.Body.String(); got != tt.want {
			t.Errorf("Error(%q) wrote %q, want %q", tt.msg, got, tt.want)
		}
	}
}
