package sockjs_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run on a goroutine left behind: the bridge's, the
// Handler's and sockjs-go's own all end with their session.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
