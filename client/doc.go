// Package client is the Go client of Tether: it creates a session with a
// Tether server, attaches it over WebSocket or, when WebSocket does not work,
// over long polling, and keeps it alive across connection cuts.
//
// # Sessions and connections
//
// Dial negotiates a session (PROTOCOL.md section 2) and attaches a first
// connection, trying each transport in turn, each within
// Options.ConnectTimeout. The transport that worked is tried first when the
// connection breaks; the session attaches again, with exponential backoff,
// until the server's resume window has passed. Messages are numbered in both
// directions and replayed after a cut, so the application sees every message
// exactly once and in order, whatever happens to the connections under it.
//
// # Ending
//
// A session ends when either side sends a close frame, when the resume
// window passes without a connection (code 4001), or on a protocol error
// (code 4003). Recv then returns the messages still queued, followed by a
// session.CloseError. The client never negotiates a new session by itself,
// even for codes whose StatusCode.Reconnects is true: the application decides,
// typically by calling Dial again after a delay.
//
// # Concurrency
//
// Every method of Session may be called from any goroutine. The goroutines a
// Session starts all exit once it has ended; Done reports when they have.
package client
