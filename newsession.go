package tether

import (
	"errors"
	"net/http"
	"time"

	"github.com/tetherkit/tether/session"
)

// Errors returned by NewSession.
var (
	// ErrOriginNotAllowed is returned by NewSession when the request's
	// Origin is neither the server's own nor in Options.AllowedOrigins.
	ErrOriginNotAllowed = errors.New("tether: origin not allowed")
	// ErrShuttingDown is returned by NewSession once Shutdown or Close has
	// been called.
	ErrShuttingDown = errors.New("tether: server shutting down")
)

// NewSession creates a session for a client that does not negotiate, such
// as one that arrives through a bridge (package sockjs), and starts the
// server's Handler on it, exactly as a negotiate request does. It checks
// r's Origin, runs Options.Authorize on r and keeps what it returns in the
// session's RequestInfo, and honours Options.MaxSessions and Shutdown.
//
// It returns ErrOriginNotAllowed, ErrShuttingDown,
// session.ErrTooManySessions, or the error Options.Authorize returned, as
// it is (an *AuthError when the hook chose a status).
//
// The caller attaches its connection with Session.Attach. Until a
// connection is attached the session's resume window runs, as after a
// negotiate; a caller that ends the session without a close frame uses
// Session.CloseFromClient.
func (srv *Server) NewSession(r *http.Request) (*session.Session, error) {
	if !srv.origins.Allowed(r) {
		return nil, ErrOriginNotAllowed
	}
	srv.mu.Lock()
	down := srv.shuttingDown
	srv.mu.Unlock()
	if down {
		srv.negotiated(NegotiateShuttingDown)
		return nil, ErrShuttingDown
	}
	var auth any
	if srv.opts.Authorize != nil {
		v, err := srv.opts.Authorize(r)
		if err != nil {
			srv.negotiated(NegotiateRefused)
			return nil, err
		}
		auth = v
	}
	info := session.RequestInfo{Header: r.Header.Clone(), RemoteAddr: r.RemoteAddr, Auth: auth}
	s := session.New(srv.sessionCfg, info, srv.store.Remove)
	if err := srv.store.Add(s); err != nil {
		s.Abort(session.CloseError{Code: session.StatusTryAgainLater, Reason: "too many sessions"})
		srv.negotiated(NegotiateTooManySessions)
		srv.opts.Logger.Warn("tether: too many sessions", "limit", srv.opts.MaxSessions, "remote", r.RemoteAddr)
		return nil, err
	}
	srv.negotiated(NegotiateOK)
	srv.opts.Logger.Info("tether: session opened", "session", s.ID(), "remote", r.RemoteAddr)
	srv.handlers.Add(1)
	start := time.Now()
	if cb, ok := srv.handler.(*Callbacks); ok {
		// No goroutine: the session calls back.
		if cb.Open != nil {
			cb.Open(s)
		}
		s.OnMessage(func(m session.Message) { cb.Message(s, m) })
		s.OnClose(func(err error) {
			defer srv.handlers.Done()
			if cb.Close != nil {
				cb.Close(s, err)
			}
			srv.logClosed(s, start)
		})
		return s, nil
	}
	go func() {
		defer srv.handlers.Done()
		defer func() {
			s.Close(session.StatusNormalClosure, "")
			srv.logClosed(s, start)
		}()
		srv.handler.ServeSession(s)
	}()
	return s, nil
}

func (srv *Server) logClosed(s *session.Session, start time.Time) {
	var ce session.CloseError
	errors.As(s.Err(), &ce)
	srv.opts.Logger.Info("tether: session closed", "session", s.ID(), "code", int(ce.Code), "reason", ce.Reason,
		"duration", time.Since(start).Round(time.Millisecond))
}

// CheckOrigin reports whether r's Origin is allowed: absent, the server's
// own, or in Options.AllowedOrigins. A bridge that serves requests of its
// own (package sockjs) applies it to each of them, as the server does.
func (srv *Server) CheckOrigin(r *http.Request) bool { return srv.origins.Allowed(r) }
