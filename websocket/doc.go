// Package websocket is Tether's WebSocket transport, on gorilla/websocket.
//
// One WebSocket message carries one frame (PROTOCOL.md section 4.2): a
// binary WebSocket message is a binary Tether message with no framing at
// all, a text WebSocket message is a frame whose first byte is its type, so
// a text message costs one byte of overhead. The connection carries both
// directions.
//
// Each connection has one goroutine, its reader; the HTTP handler returns
// once the connection is attached, so net/http releases the upgrade request
// and its buffers. There is no writer goroutine while nothing is written:
// when the session has something to send, a flush starts on a short-lived
// goroutine and writes everything queued in one write, then ends; a reply
// made in a message callback is written by the reader itself once the
// callback returns. At most one flush runs at a time (flushState says who
// holds it), and every byte, gorilla's control frames included, reaches the
// network through one lock (the connection's socket). A sender never waits
// for the network: while a flush writes, what is sent meanwhile collects in
// the session's queue and goes out in its next write. Heartbeats come from a
// timer, the acknowledgement of client messages from the session's link.
// Frames are written into the flush's buffer directly, so a message costs no
// allocation past the session's copy.
//
// A client that stops reading fills the socket: the flush waits for it for
// at most the server's WriteTimeout, then the connection closes and the
// session's resume window starts. Meanwhile messages queue in the session,
// where its SlowConsumer policy applies.
package websocket
