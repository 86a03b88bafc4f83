// Package sse is Tether's server-sent events transport: a GET answered
// with a text/event-stream response that carries server messages as they
// come, one frame per event. Client messages travel through the shared
// upstream POST (transport.ServeSend).
//
// Each event's data is one frame in wire.TextOnlyEncoding, so binary
// messages and text holding a line break travel as base64 and no data line
// is ever split. Every message event has an id: the number of server
// messages sent up to and including it. A browser EventSource that
// reconnects by itself sends the last id as Last-Event-ID, which is exactly
// the client's received count, so the new response resumes where the old
// one stopped even without the Tether client's help.
//
// A request with compact=1 gets compact framing (PROTOCOL.md section 4.6):
// an event carries a whole batch, its frames separated by U+001E, and its
// id is the number of the batch's last message, so Last-Event-ID still
// states the received count. It saves the per-message id and data fields.
//
// The response starts with a padding comment and a heartbeat, so that
// browsers and proxies hand over the first bytes at once and a client can
// tell a buffering proxy from a live stream; it ends after Options.MaxStreamBytes
// so that the browser frees the memory the response holds.
package sse
