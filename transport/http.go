package transport

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
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
)

// TokenHeader is the request header that may carry the session token
// instead of the token query parameter (PROTOCOL.md section 3): a request
// with this header is looked up with its value, whatever its query says.
const TokenHeader = "Tether-Token"

// Error answers with status and a one-line text/plain body.
func Error(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
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

// MinHeartbeatInterval is the shortest heartbeat interval a client may ask
// for with the heartbeatMs parameter (PROTOCOL.md section 5.3).
const MinHeartbeatInterval = time.Second

// ParseHeartbeat reads the heartbeatMs query parameter of an attach, by
// which a client behind a proxy that closes idle connections asks for a
// shorter heartbeat interval on that connection (PROTOCOL.md section 5.3).
// It returns negotiated when the parameter is missing; otherwise the value
// clamped to [MinHeartbeatInterval, negotiated] (negotiated when that is
// shorter than the minimum). A malformed value or 0 yields an error
// message for BadRequest.
func ParseHeartbeat(q url.Values, negotiated time.Duration) (time.Duration, string) {
	ms, bad := ParseCount(q, "heartbeatMs", 0)
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
	return min(negotiated, max(MinHeartbeatInterval, time.Duration(ms)*time.Millisecond)), ""
}

// ParseCount reads the decimal query parameter name. A missing parameter
// yields def; a malformed one an error message for BadRequest.
func ParseCount(q url.Values, name string, def uint64) (uint64, string) {
	return parseCountValue(q.Get(name), name, def)
}

// ParseRawCount is ParseCount for a raw query (r.URL.RawQuery), read
// without building url.Values for the common query that holds no escapes.
func ParseRawCount(rawQuery, name string, def uint64) (uint64, string) {
	if strings.ContainsAny(rawQuery, "%+;") {
		q, _ := url.ParseQuery(rawQuery) // as r.URL.Query does: bad pairs dropped
		return ParseCount(q, name, def)
	}
	for q := rawQuery; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return parseCountValue(v, name, def)
		}
	}
	return def, ""
}

func parseCountValue(v, name string, def uint64) (uint64, string) {
	if v == "" {
		return def, ""
	}
	if len(v) > 1 && v[0] == '0' {
		return 0, "invalid " + name
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, "invalid " + name
	}
	return n, ""
}

// OriginPolicy decides which browser origins may use the server.
type OriginPolicy struct {
	any           bool
	allowed       map[string]bool
	trustForwards bool // take the scheme from X-Forwarded-Proto
}

// NewOriginPolicy allows the request's own origin and each origin listed
// ("https://app.example.com"; compared without case). "*" allows every
// origin. The request's own scheme is https when it came over TLS or, only
// when trustForwardedProto is set (a proxy in front sets the header on
// every request), when its X-Forwarded-Proto header says https.
func NewOriginPolicy(allowed []string, trustForwardedProto bool) *OriginPolicy {
	p := &OriginPolicy{allowed: make(map[string]bool), trustForwards: trustForwardedProto}
	for _, o := range allowed {
		if o == "*" {
			p.any = true
		}
		p.allowed[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return p
}

// Allowed reports whether r may proceed: it has no Origin header (not a
// browser), or its Origin is the request's own or listed.
func (p *OriginPolicy) Allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if p.any {
		return true
	}
	o := strings.ToLower(origin)
	if p.allowed[o] {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) && u.Scheme == p.requestScheme(r)
}

func (p *OriginPolicy) requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if p.trustForwards && r.Header.Get("X-Forwarded-Proto") == "https" {
		return "https"
	}
	return "http"
}

// SetCORS lets the request's origin read the response when it is allowed
// and not the request's own.
func (p *OriginPolicy) SetCORS(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
}

// ServePreflight answers a CORS preflight (OPTIONS) request.
func (p *OriginPolicy) ServePreflight(w http.ResponseWriter, r *http.Request) {
	if !p.Allowed(r) {
		Error(w, http.StatusForbidden, MsgOriginNotAllowed)
		return
	}
	p.SetCORS(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// AttachError answers an attach that Endpoint.Attach refused: 409 for a
// stale attach (session.ErrStaleAttach), 404 for an unknown session.
func AttachError(w http.ResponseWriter, err error) {
	if errors.Is(err, session.ErrStaleAttach) {
		Error(w, http.StatusConflict, MsgStaleAttach)
		return
	}
	Error(w, http.StatusNotFound, MsgUnknownSession)
}

// WantsCompact reports whether r's query holds compact=1. It reads the raw
// query without building url.Values.
func WantsCompact(r *http.Request) bool {
	q := r.URL.RawQuery
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == wire.CompactParam+"=1" {
			return true
		}
	}
	return false
}
