package client

import (
	"errors"
	"slices"

	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// A balancer that spreads requests over servers that share no sessions
// (round robin over independent servers, no cluster) sends a session's
// requests to servers that do not hold it (PROTOCOL.md section 10.6). A
// WebSocket is one connection, so it stays on one server. A request made
// before the session first attached and answered 404 is that evidence: the
// session goes on over websocket alone, attached as after a cut (resume),
// with no new negotiate, so nothing is lost or duplicated (the WebSocket's
// seq and received let the server drop what it already has). Until one
// WebSocket attaches, a handshake answered 404 is a failed attempt
// (OnError), the next may reach the server that holds the session; none
// within the resume window ends the session with StatusSessionUnknown.

// goneError is the error of a request answered 404 unknown session; early:
// the request was made before the session first attached.
func goneError(early bool) error {
	if early {
		return errSessionGoneEarly
	}
	return errSessionGone
}

// fallBack moves the session to websocket alone when err, the end of an
// attempt or connection, is a request made before the session first
// attached answered 404, Close was not called, the session has not fallen
// back already (once per session: a session negotiated anew starts over),
// and websocket is among its transports. It reports whether it did; the
// caller then attaches with resume. Only the goroutine that attaches calls
// it.
func (s *Session) fallBack(err error) bool {
	i := slices.IndexFunc(s.transports, func(t clientTransport) bool { return t.name() == transport.WebSocket })
	if !errors.Is(err, errSessionGoneEarly) || s.out.closing() || s.fellBack.Load() || i < 0 {
		return false
	}
	s.transports = []clientTransport{s.transports[i]}
	s.preferred = s.transports[0]
	s.fellBack.Store(true)
	s.attached.Store(false)
	s.log.Info("tether falling back to websocket alone: a request made before the session attached reached a server without it")
	return true
}

// fallBackEnd is how resume ends when its window passed: for a session
// fallen back to websocket alone that no WebSocket attached since, the
// server reached did not hold it, as the 404 that started the fall back
// said (StatusSessionUnknown); otherwise it expired.
func (s *Session) fallBackEnd() error {
	if s.fellBack.Load() && !s.attached.Load() {
		return errSessionGone
	}
	return endSession(wire.StatusSessionExpired, "session expired")
}
