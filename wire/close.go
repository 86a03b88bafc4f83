package wire

import (
	"errors"
	"fmt"
)

// StatusCode is a close code. Tether uses WebSocket's codes plus its own in
// 4000-4099; 4100-4999 belong to the application. PROTOCOL.md section 6 says
// which codes make a client negotiate a new session by itself.
type StatusCode int

// Close codes.
const (
	StatusNormalClosure   StatusCode = 1000 // the session is done
	StatusGoingAway       StatusCode = 1001 // the server is shutting down; clients reconnect
	StatusAbnormalClosure StatusCode = 1006 // the client vanished and did not resume; never sent
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusInternalError   StatusCode = 1011 // clients reconnect
	StatusServiceRestart  StatusCode = 1012 // clients reconnect
	StatusTryAgainLater   StatusCode = 1013 // clients reconnect

	StatusResumeGap      StatusCode = 4000 // missing messages can no longer be replayed
	StatusSessionExpired StatusCode = 4001 // the resume window passed without a connection
	StatusSlowConsumer   StatusCode = 4002 // the queue limit (MaxQueuedBytes) was exceeded
	StatusProtocolError  StatusCode = 4003 // a malformed frame or request
	StatusNoTransport    StatusCode = 4004 // clients only: no connection could ever attach
	StatusSessionUnknown StatusCode = 4005 // clients only: a server answered 404 within the resume window
	StatusOwnerGone      StatusCode = 4006 // the cluster node that held the session is gone; clients reconnect

	// StatusApplicationMin is the first code the application may use; the
	// last is 4999.
	StatusApplicationMin StatusCode = 4100
)

// Reconnects reports whether a client negotiates a new session by itself
// after a close with this code.
func (c StatusCode) Reconnects() bool {
	switch c {
	case StatusGoingAway, StatusInternalError, StatusServiceRestart, StatusTryAgainLater, StatusOwnerGone:
		return true
	}
	return false
}

// Valid reports whether c may travel in a close frame: 1000-1003, 1007-1014
// or 3000-4999, as for WebSocket.
func (c StatusCode) Valid() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014, c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// MaxReasonBytes is the longest close reason, in bytes of UTF-8.
const MaxReasonBytes = 123

// CloseError is how a session ended: the code and reason of the close frame
// (sent or received), or a local code such as StatusAbnormalClosure.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("tether: session closed: %d", e.Code)
	}
	return fmt.Sprintf("tether: session closed: %d %s", e.Code, e.Reason)
}

// CloseStatus returns the code of the CloseError in err's chain, or -1 when
// there is none.
func CloseStatus(err error) StatusCode {
	var ce CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}
