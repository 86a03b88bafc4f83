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
// and its buffers. There is no writer goroutine: a message is written by
// the goroutine that sends it (Session.Send), with one non-blocking write
// of the whole batch, or by the reader right after delivering a message (a
// reply made in a message callback); only what a full socket does not take
// at once is finished by a short-lived goroutine, so a sender never waits
// for a slow client. At most one of them writes at a time (a flush, whose
// state says who holds it), and every byte, gorilla's control frames
// included, reaches the network through one lock (the connection's socket).
// Heartbeats come from a timer, the acknowledgement of client messages from
// the session's link. Frames are written into the connection's buffer
// directly, so a message costs no allocation past the session's copy.
//
// A client that stops reading fills the socket: the write waits for it for
// at most the server's WriteTimeout, then the connection closes and the
// session's resume window starts. Meanwhile messages queue in the session,
// where its SlowConsumer policy applies.
package websocket
