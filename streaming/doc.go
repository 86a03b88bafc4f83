// Package streaming is Tether's multipart streaming transport: a GET
// answered with a multipart/x-mixed-replace response whose parts arrive as
// the session has something to send. Each part carries one batch of frames
// (the transport batch codec, raw bytes) and states its Content-Length, so
// that a client reading a fetch() body stream can hand a part over as soon
// as its last byte arrives, without waiting for the next boundary. Client
// messages travel through the shared upstream POST (transport.ServeSend).
//
// Each response has a boundary of its own, drawn at random. It starts with
// a preamble of padding and a heartbeat part, so that browsers and proxies
// hand over the first bytes at once and a client can tell a buffering proxy
// from a live stream; it ends after Options.MaxStreamBytes with the closing
// boundary, and the client attaches again with its received count.
//
// A request with compact=1 gets compact framing (PROTOCOL.md section 4.6):
// parts hold compact batches (LEB128 frame lengths) and carry no
// Content-Type header.
package streaming
