package sockjs_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run on a goroutine left behind: the bridge's, the
// Handler's and sockjs-go's own all end with their session. sockjs-go keeps
// a SockJS session of an HTTP transport Options.DisconnectDelay after its
// last request, to answer a late one with its close frame; one goroutine
// of its own waits for that end, and the tests' delay is their timeout.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/igm/sockjs-go/v3/sockjs.(*Handler).sessionByRequest.func1"))
}
