package httpx

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/tetherkit/tether/session"
)

// Error bodies, one short line each (PROTOCOL.md section 9).
const (
	MsgUnsupportedVersion = "unsupported protocol version"
	MsgUnknownSession     = "unknown session"
	MsgStaleAttach        = "stale attach"
	MsgOriginNotAllowed   = "origin not allowed"
	MsgMethodNotAllowed   = "method not allowed"
	MsgSequenceGap        = "sequence gap"
	MsgBodyTooBig         = "body too big"
	MsgMessageTooBig      = "message too big"
	MsgTooManySessions    = "too many sessions"
	MsgTooManyForClient   = "too many sessions for this client"
	MsgNotFound           = "not found"
	MsgShuttingDown       = "shutting down"
	MsgRequestTimeout     = "request timeout"
	MsgTryAgain           = "try again"
)

// Error answers with status and a one-line text/plain body: msg, made one
// line of UTF-8 (each CR or LF a space, each invalid sequence U+FFFD)
// whatever it holds, as PROTOCOL.md section 9 promises of every error; an
// auth hook's message or an error's text may hold anything.
func Error(w http.ResponseWriter, status int, msg string) {
	if strings.ContainsAny(msg, "\r\n") || !utf8.ValidString(msg) {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(strings.ToValidUTF8(msg, "\uFFFD"))
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}

// MethodNotAllowed answers 405 with an Allow header naming the methods the
// endpoint serves (RFC 9110 requires one in every 405). OPTIONS is among
// them: every endpoint answers CORS preflights.
func MethodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow+", OPTIONS")
	Error(w, http.StatusMethodNotAllowed, MsgMethodNotAllowed)
}

// BadRequest answers 400 with "bad request: " and detail.
func BadRequest(w http.ResponseWriter, detail string) {
	Error(w, http.StatusBadRequest, "bad request: "+detail)
}

// SetNoCache sets the headers that keep browsers and proxies from caching
// or transforming a response, and tell nginx not to buffer it: for a
// response that streams.
func SetNoCache(h http.Header) {
	SetNoStore(h)
	h.Set("X-Accel-Buffering", "no")
}

// SetNoStore sets the headers that keep browsers and proxies from caching
// or transforming a response written whole (a long poll), which a proxy
// may well buffer.
func SetNoStore(h http.Header) {
	h.Set("Cache-Control", "no-cache, no-store, no-transform")
	h.Set("X-Content-Type-Options", "nosniff")
}

// AttachError answers an attach that Endpoint.Attach refused: 409 for a
// stale attach (session.ErrStaleAttach), 503 when the session's holder
// cannot be reached now (session.ErrUnreachable), 404 for an unknown
// session.
func AttachError(w http.ResponseWriter, err error) {
	if errors.Is(err, session.ErrStaleAttach) {
		Error(w, http.StatusConflict, MsgStaleAttach)
		return
	}
	if errors.Is(err, session.ErrUnreachable) {
		Error(w, http.StatusServiceUnavailable, MsgTryAgain)
		return
	}
	Error(w, http.StatusNotFound, MsgUnknownSession)
}
