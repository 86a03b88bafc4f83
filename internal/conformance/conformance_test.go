package conformance_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/internal/conformance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTransports runs the table against every transport a default server
// offers.
func TestTransports(t *testing.T) {
	offered := conformance.OfferedTransports(t)
	if len(offered) == 0 {
		t.Fatal("the server offers no transport")
	}
	for _, name := range offered {
		t.Run(name, func(t *testing.T) { conformance.Run(t, name) })
	}
}
