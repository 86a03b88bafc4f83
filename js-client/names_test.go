package jsclient_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/tetherkit/tether/transport"
)

// TestTransportNamesAgree keeps the JavaScript client's one list of
// transports (src/policy.ts) and the Go one (transport.Names) the same
// names in the same default order.
func TestTransportNamesAgree(t *testing.T) {
	src, err := os.ReadFile("src/policy.ts")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`export const transports = \[([^\]]*)\] as const`).FindSubmatch(src)
	if m == nil {
		t.Fatal("src/policy.ts: no `export const transports = [...] as const`")
	}
	var got []string
	for _, q := range regexp.MustCompile(`'[^']*'`).FindAll(m[1], -1) {
		name, err := strconv.Unquote(`"` + string(q[1:len(q)-1]) + `"`)
		if err != nil {
			t.Fatalf("src/policy.ts: transport name %s: %v", q, err)
		}
		got = append(got, name)
	}
	if want := transport.Names(); !slices.Equal(got, want) {
		t.Errorf("src/policy.ts transports %q, want %q (transport.Names)", got, want)
	}
}
