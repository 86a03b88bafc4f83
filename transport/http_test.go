package transport_test

import (
	"net/url"
	"testing"

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
