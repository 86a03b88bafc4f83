// Package transport holds what every Tether transport shares: the
// Transport interface and the Attach and Config it is given, the
// transports' names, the negotiate answer, the stream loop the streaming
// transports share (ServeStream), and the upstream POST handler that every
// HTTP transport uses for client-to-server messages (ServeSend). Frames are
// encoded and decoded by package wire; the HTTP answers, headers and origin
// checks are internal to this module.
//
// A transport package (websocket, longpoll, ...) implements Transport and
// moves frames between one connection and a session: it attaches to the
// session.Endpoint the server found, takes what to send from the
// session.Link that returns, and delivers what the client sends into the
// Endpoint. It never re-implements framing, origin checks or the upstream
// POST, and never depends on how or where the session is held.
package transport
