// Package httpx holds the HTTP helpers that the server and this module's
// transports share and no user imports: the one-line error answers of
// PROTOCOL.md section 9, the headers that keep proxies from caching or
// buffering a response, the origin policy and its CORS answers, reading a
// request body within its limits (and never waiting for one nobody reads),
// the turns that one session's requests take while they wait for room, and
// reading the protocol's query parameters. Package transport holds what a transport implements and
// calls; this package holds how the answers are written.
package httpx
