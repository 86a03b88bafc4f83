package main

import (
	"embed"
	"io/fs"
	"net/http"
	"os"
)

// The bench page and its script, served by the bench server at pagePath.
//
//go:embed browser/index.html browser/bench.js
var browserFiles embed.FS

// pagePath is where the bench server serves the browser bench's page;
// sockjs-client's bundle is at pagePath+"sockjs.min.js".
const pagePath = "/page/"

// sockjsClientEnv names the file of sockjs-client's bundle the bench server
// serves to the page.
const sockjsClientEnv = "TETHER_BENCH_SOCKJS_CLIENT"

// pageHandler serves the page, cross-origin isolated: performance.now()
// then has 5 µs resolution in Chromium instead of 100 µs.
func pageHandler() http.Handler {
	sub, _ := fs.Sub(browserFiles, "browser")
	files := http.StripPrefix(pagePath, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Embedder-Policy", "require-corp")
		h.Set("Cache-Control", "no-store")
		if r.URL.Path == pagePath+"sockjs.min.js" {
			path := os.Getenv(sockjsClientEnv)
			if path == "" {
				http.Error(w, sockjsClientEnv+" is not set", http.StatusNotFound)
				return
			}
			h.Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeFile(w, r, path)
			return
		}
		files.ServeHTTP(w, r)
	})
}
