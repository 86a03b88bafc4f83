// Package jsclient holds the bundled JavaScript client, built from the
// TypeScript in src/ and committed in dist/, and serves it over HTTP.
//
// The Server serves it at {prefix}tether.js (a classic script defining the
// global Tether) and {prefix}tether.mjs (an ES module).
package jsclient

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/internal/httpx"
)

//go:embed dist/tether.js dist/tether.mjs
var dist embed.FS

// file is one bundle with its precomputed strong ETag.
type file struct {
	data []byte
	etag string
}

var files = map[string]file{
	"tether.js":  load("tether.js"),
	"tether.mjs": load("tether.mjs"),
}

func load(name string) file {
	b, err := dist.ReadFile("dist/" + name)
	if err != nil {
		panic("jsclient: " + err.Error()) // the embed directive guarantees it
	}
	sum := sha256.Sum256(b)
	return file{data: b, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
}

// Bundle returns the bytes of the bundle name ("tether.js" or
// "tether.mjs"), or nil for any other name. The caller must not modify them.
func Bundle(name string) []byte {
	return files[name].data
}

// ServeHTTP answers r with the bundle name: "tether.js" or "tether.mjs";
// any other name answers 404. It serves GET and HEAD, answers a CORS
// preflight (OPTIONS) 204, and other methods 405, errors in the form of
// every error of the server (PROTOCOL.md section 9). The bundle is public:
// every answer carries Access-Control-Allow-Origin: *, so that a page of
// any origin may load it, as an ES module too (which a browser fetches with
// CORS). It sets Content-Type, a strong ETag and Cache-Control: no-cache
// (the browser revalidates, so a new server version is picked up at once),
// and answers 304 Not Modified when If-None-Match holds the ETag.
func ServeHTTP(w http.ResponseWriter, r *http.Request, name string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	f, ok := files[name]
	switch {
	case !ok:
		httpx.Error(w, http.StatusNotFound, httpx.MsgNotFound)
		return
	case r.Method == http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		httpx.MethodNotAllowed(w, "GET, HEAD")
		return
	}
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if etagMatch(r.Header.Get("If-None-Match"), f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(f.data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(f.data)
	}
}

// etagMatch reports whether an If-None-Match header value names etag,
// comparing weakly as RFC 9110 section 13.1.2 asks.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
