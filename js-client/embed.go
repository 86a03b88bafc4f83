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
// any other name answers 404. It serves GET and HEAD (other methods answer
// 405), sets Content-Type, a strong ETag and Cache-Control: no-cache (the
// browser revalidates, so a new server version is picked up at once), and
// answers 304 Not Modified when If-None-Match holds the ETag.
func ServeHTTP(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := files[name]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
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
