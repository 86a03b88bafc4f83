// Package sockjs lets SockJS clients (sockjs-client in the browser, or any
// client of the SockJS protocol) use a Tether server. New returns an
// http.Handler, built on github.com/igm/sockjs-go/v3, that turns each SockJS
// session into a Tether session: the server's Handler receives it like any
// other, with Session.Transport reporting "sockjs".
//
// # What a SockJS client gets
//
//   - Messages both ways, in order, as SockJS delivers them. Text messages
//     travel as they are. SockJS carries only text, so a binary message the
//     application sends reaches a SockJS client as its standard base64
//     encoding (RFC 4648 section 4, with padding), with nothing to mark it:
//     the application's own protocol says which messages are binary.
//     Messages from a SockJS client are always wire.Text.
//   - The server's close codes and reasons: Session.Close(code, reason)
//     reaches the client as a SockJS close frame with the same code and
//     reason, after every message sent before it.
//   - Heartbeats: sockjs-go's own "h" frames, every
//     Options.HeartbeatInterval.
//   - The server's limits and checks: the origin policy on every request
//     (403 otherwise), Options.Authorize on the request that opens the
//     SockJS session, MaxSessions, Shutdown, MaxMessageBytes (a larger
//     message from the client closes the session with 1009) and
//     MaxQueuedBytes with the slow-consumer policy; and the bridge's own
//     Options.MaxBodyBytes and ReadTimeout on what a client sends at once
//     (an xhr_send body, a WebSocket message).
//
// # What it cannot give
//
//   - Resume. SockJS has no acknowledgements and no way to attach again to
//     a session: when a SockJS session ends (its WebSocket closes, or an
//     HTTP client does not come back within Options.DisconnectDelay), the
//     Tether session ends with StatusAbnormalClosure (1006). Messages the
//     server had handed to SockJS and the client had not read are lost, as
//     with SockJS alone.
//   - Client close codes. sockjs-client's close(code, reason) sends nothing
//     to the server; the server sees the SockJS session end, and Recv
//     returns a CloseError with 1006.
//   - Binary messages from the client (see above).
//
// A message counts as delivered, and leaves the session's queue, when it
// is written to the client's connection: at once on a WebSocket, when a
// poll or stream response carries it on the HTTP transports.
//
// # Transports
//
// The handler serves SockJS's websocket, xhr-streaming, xhr-polling and
// eventsource transports. It refuses (404) the iframe, htmlfile and JSONP
// ones, as the Tether server does: they exist for browsers nobody supports
// any more and they widen the attack surface. sockjs-client falls back
// among the others by itself.
//
// # Concurrency
//
// Each SockJS session is served by one goroutine of the bridge (plus one
// reading from the client) for as long as it lasts, and the server's Handler
// by its own, as for every session. None outlives its session.
package sockjs
