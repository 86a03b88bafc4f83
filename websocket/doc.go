// Package websocket is Tether's WebSocket transport, on gorilla/websocket.
//
// One WebSocket message carries one frame (PROTOCOL.md section 4.2): a
// binary WebSocket message is a binary Tether message with no framing at
// all, a text WebSocket message is a frame whose first byte is its type, so
// a text message costs one byte of overhead. The connection carries both
// directions; each connection has one reader goroutine and one writer, the
// request's own goroutine.
package websocket
