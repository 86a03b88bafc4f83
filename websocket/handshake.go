package websocket

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/tetherkit/tether/internal/httpx"
)

// handshakeError reports what makes r a WebSocket handshake the upgrader
// would refuse, or "" when there is nothing: r is checked before it
// attaches, so that a refused handshake supersedes no connection of the
// session. The details are the upgrader's own.
func handshakeError(r *http.Request) string {
	if !hasToken(r.Header, "Sec-Websocket-Version", "13") {
		return "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header"
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-Websocket-Key"))
	if err != nil || len(key) != 16 {
		return "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length"
	}
	return ""
}

// hasToken reports whether a comma-separated list in one of h's name
// headers holds token, ignoring case.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// refuseHandshake answers a handshake refused before the upgrade: 400 with
// the detail, naming in Sec-WebSocket-Version the one version the server
// speaks (RFC 6455 section 4.4), so that a client that offered another can
// tell.
func refuseHandshake(w http.ResponseWriter, detail string) {
	w.Header().Set("Sec-WebSocket-Version", "13")
	httpx.BadRequest(w, detail)
}
