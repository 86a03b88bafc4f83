// Package tether is a real-time messaging server that keeps working when
// WebSocket does not. The application sees one session per client (send,
// receive, close); under it, the connection travels over whichever
// transport the client's network allows — WebSocket, server-sent events,
// multipart streaming or long polling —
// chosen at connect time and re-chosen when it breaks, without losing,
// duplicating or reordering a message.
//
// A Server is an http.Handler mounted under a prefix:
//
//	srv := tether.NewServer(tether.HandlerFunc(func(s *session.Session) {
//		for {
//			m, err := s.Recv(s.Context())
//			if err != nil {
//				return // wire.CloseStatus(err) says why
//			}
//			s.Send(s.Context(), m)
//		}
//	}), nil)
//	http.Handle("/rt/", srv)
//
// # Receiving sessions
//
// The Server calls the Handler once per session, in a goroutine of its own,
// as net/http calls a handler once per request. The session ends, if it has
// not already, when the handler returns. This ties the session's lifetime to
// one function the application writes, and needs no accept loop that could
// fall behind.
//
// A server that holds many mostly idle sessions (notifications, live
// dashboards) can serve them with Callbacks instead: functions the session
// calls when it opens, for each message, and when it closes, with no
// goroutine per session. An idle WebSocket session then holds one
// goroutine, its connection's reader; writes happen when there is
// something to write, and a reply sent from the Message callback is written
// by that reader directly:
//
//	srv := tether.NewServer(&tether.Callbacks{
//		Message: func(s *session.Session, m wire.Message) {
//			s.Send(s.Context(), m)
//		},
//	}, nil)
//
// A callback runs while its client's connection waits, so it should return
// promptly; work that takes long, or a Send that may wait for the client
// (SlowConsumerBlock), belongs in a goroutine.
//
// # Where sessions live
//
// The application is given a *session.Session, which has what an
// application calls (Send, Recv, Close, ...). Transports are given a
// session.Endpoint, found in the server's session.Store (Options.Store,
// by default this process's memory): a store shared by several servers can
// find a session another server holds and return an Endpoint that relays to
// it, and every transport serves it unchanged.
//
// # Concurrency
//
// A Server and its sessions may be used from any number of goroutines.
package tether
