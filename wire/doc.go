// Package wire is what travels between a Tether client and server: the
// messages (Message, MessageType), the close codes and the error a close
// becomes (StatusCode, CloseError, CloseStatus), the errors both sides
// return for the same mistake, and the frame codec of PROTOCOL.md section 4
// that every transport and the Go client share.
//
// A frame is one byte of type (FrameType) and a payload: a message, an
// acknowledgement of messages received, a heartbeat or a close.
// AppendMessage, AppendAck, AppendHeartbeat and AppendClose encode one;
// ParseFrame decodes one. Carriers that do not delimit frames by themselves
// (HTTP bodies, streams) send batches: each frame prefixed with its length,
// in decimal and a colon (AppendBatchFrame, ParseBatch) or, when the client
// asks for compact framing, in LEB128 (AppendCompactFrame,
// ParseCompactBatch). An Encoding says whether a carrier takes raw bytes or
// only one line of text, in which case messages travel in base64.
//
// The server's session package and the Go client both build on this
// package, so that a CloseError or an errors.Is test reads the same on
// either side. It depends on the standard library alone and holds no
// state: every function is safe for concurrent use.
//
// A message published to many sessions is encoded once per Encoding: its
// Frames keeps each frame built, which every connection writing the
// message is given (Encoding.SharedFrame, and the shared argument of
// AppendBatchMessage and AppendCompactMessage).
package wire
