// Package transport holds what every Tether transport shares: the
// Transport interface, the transports' names, the negotiate answer, the
// origin policy, the response headers, the shared stream loop, and the
// upstream POST handler that every HTTP transport uses for client-to-server
// messages. Frames are encoded and decoded by package wire.
//
// A transport package (websocket, longpoll, ...) implements Transport and
// moves frames between one connection and a session: it attaches to the
// session.Endpoint the server found, takes what to send from the
// session.Link that returns, and delivers what the client sends into the
// Endpoint. It never re-implements framing, origin checks or the upstream
// POST, and never depends on how or where the session is held.
package transport
