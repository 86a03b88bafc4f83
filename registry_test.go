package tether

import (
	"slices"
	"testing"

	"github.com/tetherkit/tether/transport"
)

// TestTransportRegistryIsNames keeps the server's registry and the shared
// list of names one list, and checks that each constructor makes the
// transport of its name.
func TestTransportRegistryIsNames(t *testing.T) {
	o := (*Options)(nil).withDefaults()
	var got []string
	for name, newTransport := range transportRegistry {
		got = append(got, name)
		if tr := newTransport(&o); tr.Name() != name {
			t.Errorf("registry entry %q makes transport %q", name, tr.Name())
		}
	}
	want := transport.Names()
	slices.Sort(got)
	sorted := slices.Sorted(slices.Values(want))
	if !slices.Equal(got, sorted) {
		t.Errorf("registry has %q, want %q (transport.Names)", got, sorted)
	}
	if !slices.Equal(o.Transports, want) {
		t.Errorf("default Options.Transports %q, want %q", o.Transports, want)
	}
}
