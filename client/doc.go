// Package client is the Go client of Tether: it creates a session with a
// Tether server, attaches it over the best transport that works (WebSocket,
// server-sent events, multipart streaming or long polling), and keeps it
// alive across connection cuts.
//
// # Sessions and connections
//
// Dial negotiates a session (PROTOCOL.md section 2) and attaches a first
// connection. By default it connects fast (PROTOCOL.md section 10): long
// polling at once, proven by one send request, so Dial returns after about
// two round trips on any network that passes plain HTTP; then the session
// probes the transports before long polling in the server's order
// (WebSocket attaches, sse and streaming are first probed with probe=1,
// which attaches nothing, so a buffering proxy costs no message) and the
// first that works takes over, with nothing lost. A round that leaves the
// session on a transport after the first (a WebSocket refused by a proxy
// for a while, an attempt timed out on a loaded machine) is followed by
// another after 2 to 4 s, then after delays doubling up to about a minute,
// while the connection works and the session is not closing, so the
// session reaches the best transport that works without waiting for a
// cut (PROTOCOL.md section 10.2, step 4). Options.DisableUpgrade
// tries the transports one after another instead, each within
// Options.ConnectTimeout. When the connection breaks, the session attaches
// again, with exponential backoff, until the server's resume window has
// passed, and upgrades again from there, so after an outage it is back on
// the best transport that works. Messages are numbered in both directions
// and replayed after a cut, so the application sees every message exactly
// once and in order, whatever happens to the connections under it.
//
// Behind a proxy that closes connections idle for less than the heartbeat
// interval, two cuts in a row after about the same idle time T make the
// session attach with heartbeatMs=T/2 from then on (at least 1 s), so that
// idle gaps no longer cut it (PROTOCOL.md section 10.4); it logs "tether
// heartbeat shortened" at Info.
//
// # Ending
//
// A session ends when either side sends a close frame, when the resume
// window passes without a connection (code 4001), when a request reaches a
// server that does not hold the session (code 4005), or on a protocol error
// (code 4003).
//
// Behind a balancer over servers that share no sessions (round robin over
// independent servers, no cluster), a request made before the session
// first attached (its first poll, stream response, send or WebSocket
// handshake) answered 404 is taken as that evidence, reported to
// Options.OnError: the same session goes on over websocket alone, one
// connection so one server, attached as after a cut (no new negotiate, so
// nothing is lost or duplicated; no OnResuming nor OnReconnecting), whether
// Dial is still attaching or has returned (PROTOCOL.md section 10.6). Until
// a WebSocket attaches, a handshake answered 404 is a failed attempt
// (OnError, status 404) and the next is tried after the backoff; none
// within the resume window ends the session with 4005 (Dial returns it as a
// wire.CloseError). Once per session, only while Close was not called and
// websocket is among Options.Transports (or the server's offer); a 404
// once the session has attached ends it with 4005 as above.
// Recv then returns the messages still queued, followed by a
// wire.CloseError. After a close frame whose code says so (1001, 1011,
// 1012, 1013, and 4006 when the cluster node that held the session is gone:
// StatusCode.Reconnects), the client negotiates a new session by
// itself, as the JavaScript client does, and the Session goes on with a new
// ID: it reconnects. Options.DisableReconnect turns that off, and
// Options.OnReconnecting reports it. A connection lost without a close frame
// is no reconnect: the client resumes, attaching again to the same session,
// which goes on with nothing lost; Options.OnResuming and Options.OnResumed
// report it. Options.MinDelay and Options.MaxDelay space the rounds of
// attempts of both. Options.OnError reports every
// failed attempt to negotiate, attach or probe (an AttemptError: request,
// transport, HTTP status), as the JavaScript client's error event does.
//
// # Concurrency
//
// Every method of Session may be called from any goroutine. The goroutines a
// Session starts all exit once it has ended; Done reports when they have.
package client
