package client

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tetherkit/tether/wire"
)

var (
	// ErrNoTransport is returned by Dial when no transport is both offered
	// by the server and known to this client, or when every one of them
	// failed to attach.
	ErrNoTransport = errors.New("tether: no usable transport")
	// ErrUnknownTransport is returned by Dial when Options.Transports names
	// a transport this client does not implement.
	ErrUnknownTransport = errors.New("tether: unknown transport")
	// ErrUnsupportedProtocol is returned by Dial when the server answers
	// negotiate with a protocol version other than 1, or with 400
	// "unsupported protocol version" (wrapping the NegotiateError). A
	// session negotiating anew after such an answer ends with 4003.
	ErrUnsupportedProtocol = errors.New("tether: unsupported protocol version")
)

// NegotiateError is returned by Dial when the server refuses the negotiate
// request: Status is the HTTP status (401 or 403 from the auth hook, 403 for
// a forbidden origin, 503 for too many sessions) and Message the server's
// one-line error message (PROTOCOL.md section 9). An answer that is not
// Tether's, such as a proxy's HTML page, carries none: Message is then
// "HTTP " and the status ("HTTP 502").
type NegotiateError struct {
	Status  int
	Message string
}

func (e *NegotiateError) Error() string {
	return fmt.Sprintf("tether: negotiate refused: %d %s", e.Status, e.Message)
}

// AttemptError is one failed attempt, as Options.OnError reports it: the
// JavaScript client's error event. The session goes on and tries again, or
// ends with a close code that says why.
type AttemptError struct {
	// Request is what failed: "negotiate", "attach", "probe" or "send" (a
	// send answered with a status it does not expect, such as a proxy's
	// 502 or a login page's 200, or answered 404, or 413 for a message
	// alone).
	Request string
	// Transport is the transport of the attach or probe; "" for negotiate.
	Transport string
	// Status is the HTTP status of the answer, 0 when there was none (a
	// network error, a timeout, a stream held back).
	Status int
	// Err is the failure.
	Err error
}

func (e *AttemptError) Error() string {
	return fmt.Sprintf("tether: %s %s failed: %v", e.Request, e.Transport, e.Err)
}

func (e *AttemptError) Unwrap() error { return e.Err }

// statusError is an HTTP answer other than the one expected.
type statusError struct {
	status int
	text   string // the first line of the body, if read
}

func (e *statusError) Error() string {
	if e.text == "" {
		return fmt.Sprintf("answered %d", e.status)
	}
	return fmt.Sprintf("status %d: %s", e.status, e.text)
}

// httpStatus returns the HTTP status err carries, 0 when none; 404 for a
// request answered unknown session (an upgrade's attach, say).
func httpStatus(err error) int {
	if errors.Is(err, errSessionGone) {
		return http.StatusNotFound
	}
	if se := (*statusError)(nil); errors.As(err, &se) {
		return se.status
	}
	var ne *NegotiateError
	if errors.As(err, &ne) {
		return ne.Status
	}
	return 0
}

// unknownSession is the failure an attempt answered 404 reports: the
// server it reached does not know the session.
var unknownSession = &statusError{status: http.StatusNotFound, text: "unknown session"}

// reportGone reports to Options.OnError a request answered 404 when err,
// the error it ended with, says so; the session then ends with
// StatusSessionUnknown.
func (s *Session) reportGone(request, transport string, err error) {
	if errors.Is(err, errSessionGone) {
		s.attemptFailed(request, transport, unknownSession)
	}
}

// attemptFailed reports a failed attempt to Options.OnError.
func (s *Session) attemptFailed(request, transport string, err error) {
	if fn := s.opts.OnError; fn != nil {
		fn(&AttemptError{Request: request, Transport: transport, Status: httpStatus(err), Err: err})
	}
}

// endError is returned by a transport when the session is over, as opposed
// to any other error, which means only that the connection broke.
type endError struct {
	ce wire.CloseError
	// local is true when the client sent the close frame itself.
	local bool
	// notify is true when the client found the fault (a protocol error) and
	// should tell the server with a close frame if the connection allows.
	notify bool
}

func (e *endError) Error() string { return e.ce.Error() }

// endSession returns an *endError for a close decided on the client side or
// received from the server.
func endSession(code wire.StatusCode, reason string) error {
	return &endError{ce: wire.CloseError{Code: code, Reason: reason}}
}

// protocolError ends a session for a fault of the server's: a malformed
// frame, a message over the limit, an impossible acknowledgement.
func protocolError(code wire.StatusCode, reason string) error {
	return &endError{ce: wire.CloseError{Code: code, Reason: reason}, notify: true}
}

var (
	// errSessionGone ends a session the server does not know (404) before
	// the resume window has passed: the request reached a server that does
	// not hold it.
	errSessionGone = endSession(wire.StatusSessionUnknown, "session unknown")
	// errSessionGoneEarly is errSessionGone for a request made before the
	// session first attached: the evidence of a balancer over servers that
	// share no sessions, after which the session may go on over websocket
	// alone (balancer.go).
	errSessionGoneEarly = fmt.Errorf("%w (a request made before the session first attached)", errSessionGone)
	// errSequenceGap ends a session whose server found a gap in the
	// client's messages (409).
	errSequenceGap = endSession(wire.StatusResumeGap, "sequence gap")
)

// errStopped is returned by internal waits cut short by the end of the
// session; the public methods turn it into the session's CloseError.
var errStopped = errors.New("tether: session ended")
