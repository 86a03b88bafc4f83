package httpx

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/wire"
)

// TokenHeader is the request header that may carry the session token
// instead of the token query parameter (PROTOCOL.md section 3): a request
// with this header is looked up with its value, whatever its query says.
const TokenHeader = "Tether-Token"

// ParseCount reads the decimal query parameter name. A missing parameter
// yields def; a malformed one (an empty value included: no count is
// empty) an error message for BadRequest.
func ParseCount(q url.Values, name string, def uint64) (uint64, string) {
	if !q.Has(name) {
		return def, ""
	}
	return parseCountValue(q.Get(name), name)
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
			return parseCountValue(v, name)
		}
	}
	return def, ""
}

func parseCountValue(v, name string) (uint64, string) {
	if v == "" || len(v) > 1 && v[0] == '0' {
		return 0, "invalid " + name
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, "invalid " + name
	}
	return n, ""
}

// WantsCompact reports whether r's query holds compact=1.
func WantsCompact(r *http.Request) bool { return HasFlag(r, wire.CompactParam) }

// HasFlag reports whether r's query holds name=1. It reads the raw query
// without building url.Values.
func HasFlag(r *http.Request, name string) bool {
	q := r.URL.RawQuery
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if len(kv) == len(name)+2 && kv[:len(name)] == name && kv[len(name):] == "=1" {
			return true
		}
	}
	return false
}

// SendQuery returns the seq and received counts of a send request (0 when
// absent), or answers the request 405 (a method other than POST) or 400 (a
// malformed count) and returns ok false. The server calls it before it
// looks the session up, so that a request refused for its method or query
// gets that answer whatever its session (PROTOCOL.md section 9).
func SendQuery(w http.ResponseWriter, r *http.Request) (seq, received uint64, ok bool) {
	if r.Method != http.MethodPost {
		MethodNotAllowed(w, http.MethodPost)
		return 0, 0, false
	}
	seq, bad := ParseRawCount(r.URL.RawQuery, "seq", 0)
	if bad == "" {
		received, bad = ParseRawCount(r.URL.RawQuery, "received", 0)
	}
	if bad != "" {
		BadRequest(w, bad)
		return 0, 0, false
	}
	return seq, received, true
}

// KeptHeader copies the headers of h that fit in limit bytes, in the order
// of their names, each kept whole (every value) if its name and values fit
// in what is left of limit, and left out otherwise: what a session keeps of
// the request that made it (tether.KeptHeaderBytes).
func KeptHeader(h http.Header, limit int) http.Header {
	kept := make(http.Header)
	left := limit
	for _, name := range slices.Sorted(maps.Keys(h)) {
		size := len(name)
		for _, v := range h[name] {
			size += len(v)
		}
		if size > left {
			continue
		}
		left -= size
		kept[name] = slices.Clone(h[name])
	}
	return kept
}
