package httpx

import (
	"net/http"
	"net/url"
	"strings"
)

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
