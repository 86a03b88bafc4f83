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
// window passes without a connection (code 4001), when a request reaches a
// server that does not hold the session (code 4005, as behind a balancer
// over servers that share no sessions), or on a protocol error (code 4003).
// Recv then returns the messages still queued, followed by a
// session.CloseError. After a close frame whose code says so (1001, 1011,
// 1012, 1013: StatusCode.Reconnects), the client negotiates a new session by
// itself, as the JavaScript client does, and the Session goes on with a new
// ID; Options.DisableReconnect turns that off, and Options.OnReconnecting
// reports it (and every lost connection).
//
// # Concurrency
//
// Every method of Session may be called from any goroutine. The goroutines a
// Session starts all exit once it has ended; Done reports when they have.
package client
