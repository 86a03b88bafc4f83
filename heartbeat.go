package tether

import (
	"net/url"
	"time"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/transport"
)

// parseHeartbeat reads the heartbeatMs query parameter of an attach, by
// which a client behind a proxy that closes idle connections asks for a
// shorter heartbeat interval on that connection (PROTOCOL.md section 5.3).
// It returns negotiated when the parameter is missing; otherwise the value
// clamped to [transport.MinHeartbeatInterval, negotiated] (negotiated when that is
// shorter than the minimum). A malformed value or 0 yields an error
// message for httpx.BadRequest.
func parseHeartbeat(q url.Values, negotiated time.Duration) (time.Duration, string) {
	ms, bad := httpx.ParseCount(q, "heartbeatMs", 0)
	switch {
	case bad != "":
		return 0, bad
	case !q.Has("heartbeatMs"):
		return negotiated, ""
	case ms == 0:
		return 0, "invalid heartbeatMs"
	case ms >= uint64(negotiated.Milliseconds()):
		return negotiated, ""
	}
	return min(negotiated, max(transport.MinHeartbeatInterval, time.Duration(ms)*time.Millisecond)), ""
}
