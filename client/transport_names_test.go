package client

import (
	"slices"
	"testing"

	"github.com/tetherkit/tether/transport"
)

// TestKnownTransportsAreNames keeps the client's transports and the shared
// list of names one list: a transport added to one and not the other fails
// here.
func TestKnownTransportsAreNames(t *testing.T) {
	var got []string
	for _, tr := range knownTransports {
		got = append(got, tr.name())
	}
	if want := transport.Names(); !slices.Equal(got, want) {
		t.Errorf("client transports %q, want %q (transport.Names)", got, want)
	}
}
