package jsclient_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	jsclient "github.com/tetherkit/tether/js-client"
)

func serve(t *testing.T, method, name string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "/rt/"+name, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	jsclient.ServeHTTP(w, r, name)
	return w
}

func TestServeHTTP(t *testing.T) {
	for _, name := range []string{"tether.js", "tether.mjs"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile("dist/" + name)
			if err != nil {
				t.Fatal(err)
			}
			w := serve(t, http.MethodGet, name, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", name, w.Code)
			}
			if !bytes.Equal(w.Body.Bytes(), want) {
				t.Errorf("GET %s: body differs from dist/%s", name, name)
			}
			if !bytes.Equal(jsclient.Bundle(name), want) {
				t.Errorf("Bundle(%q) differs from dist/%s", name, name)
			}
			h := w.Result().Header
			for k, v := range map[string]string{
				"Content-Type":  "text/javascript; charset=utf-8",
				"Cache-Control": "no-cache",
			} {
				if got := h.Get(k); got != v {
					t.Errorf("GET %s: %s = %q, want %q", name, k, got, v)
				}
			}
			etag := h.Get("ETag")
			if len(etag) < 3 || etag[0] != '"' {
				t.Fatalf("GET %s: ETag = %q, want a strong ETag", name, etag)
			}

			for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
				w = serve(t, http.MethodGet, name, http.Header{"If-None-Match": {inm}})
				if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
					t.Errorf("If-None-Match %q: status %d with %d bytes, want 304 and none", inm, w.Code, w.Body.Len())
				}
			}
			w = serve(t, http.MethodGet, name, http.Header{"If-None-Match": {`"stale"`}})
			if w.Code != http.StatusOK {
				t.Errorf("If-None-Match stale: status %d, want 200", w.Code)
			}
			w = serve(t, http.MethodHead, name, nil)
			if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Result().Header.Get("Content-Length") != strconv.Itoa(len(want)) {
				t.Errorf("HEAD %s: status %d, %d bytes, Content-Length %q", name, w.Code, w.Body.Len(), w.Result().Header.Get("Content-Length"))
			}
		})
	}
}

func TestServeHTTPErrors(t *testing.T) {
	tests := []struct {
		method, name string
		want         int
	}{
		{http.MethodGet, "tether.d.ts", http.StatusNotFound},
		{http.MethodGet, "other.js", http.StatusNotFound},
		{http.MethodPost, "tether.js", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		w := serve(t, tt.method, tt.name, nil)
		if w.Code != tt.want {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.name, w.Code, tt.want)
		}
		// Every error in the server's form (PROTOCOL.md section 9).
		h := w.Result().Header
		if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s %s: headers %v", tt.method, tt.name, h)
		}
	}
	if got := serve(t, http.MethodPost, "tether.js", nil).Result().Header.Get("Allow"); got != "GET, HEAD, OPTIONS" {
		t.Errorf("405: Allow %q", got)
	}
}

// TestServeHTTPCrossOrigin checks that any origin may load the bundle,
// the ES module with CORS included, and gets its preflight answered.
func TestServeHTTPCrossOrigin(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
		w := serve(t, method, "tether.mjs", http.Header{"Origin": {"https://other.example"}})
		if got := w.Result().Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want *", method, got)
		}
		if method == http.MethodOptions && w.Code != http.StatusNoContent {
			t.Errorf("preflight: status %d, want 204", w.Code)
		}
	}
}

func TestETagsDiffer(t *testing.T) {
	a := serve(t, http.MethodGet, "tether.js", nil).Result().Header.Get("ETag")
	b := serve(t, http.MethodGet, "tether.mjs", nil).Result().Header.Get("ETag")
	if a == b {
		t.Errorf("tether.js and tether.mjs share the ETag %q", a)
	}
}
