package tether

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Errors returned by NewSession.
var (
	// ErrOriginNotAllowed is returned by NewSession when the request's
	// Origin is neither the server's own nor in Options.AllowedOrigins.
	ErrOriginNotAllowed = errors.New("tether: origin not allowed")
	// ErrShuttingDown is returned by NewSession once Shutdown or Close has
	// been called.
	ErrShuttingDown = errors.New("tether: server shutting down")
	// ErrTooManyForClient is returned by NewSession when the request's
	// client (Options.ClientKey) holds Options.MaxSessionsPerClient
	// sessions already.
	ErrTooManyForClient = errors.New("tether: too many sessions for this client")
	// ErrStateUnavailable is wrapped, with the cause, by the error
	// NewSession returns when the server's durable store
	// (session.DurableStore) could not store the new session's state: the
	// client tries again (negotiate answers 503 try again).
	ErrStateUnavailable = errors.New("tether: session state unavailable")
)

// KeptHeaderBytes bounds what a session keeps of its negotiate request's
// headers in RequestInfo.Header: the headers, in the order of their names,
// each kept whole (every value) if its name and values fit in what is left
// of KeptHeaderBytes, and left out otherwise. Options.Authorize sees every
// header, and what it returns is kept whole in RequestInfo.Auth.
const KeptHeaderBytes = 8 << 10

// NewSession creates a session for a client that does not negotiate, such
// as one that arrives through a bridge (package sockjs), and starts the
// server's Handler on it, exactly as a negotiate request does. It checks
// r's Origin, runs Options.Authorize on r and keeps what it returns in the
// session's RequestInfo, and honours Options.MaxSessions and Shutdown.
//
// It returns ErrOriginNotAllowed, ErrShuttingDown,
// session.ErrTooManySessions, ErrTooManyForClient, or the error
// Options.Authorize returned, as it is (an *AuthError when the hook chose a
// status). Of r's headers the session keeps at most KeptHeaderBytes.
//
// It returns the session's *session.Local, for the caller to serve it as a
// transport does: the caller attaches its connection with Attach. Until a
// connection is attached the session's first-attach window runs
// (Options.FirstAttachWindow), as after a negotiate; a caller that ends the
// session without a close frame uses CloseFromClient. The Handler is given
// the application's side, the Local's Session.
func (srv *Server) NewSession(r *http.Request) (*session.Local, error) {
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
	release, ok := srv.clients.acquire(srv.clientKey(r))
	if !ok {
		srv.negotiated(NegotiateTooManyForClient)
		srv.opts.Logger.Warn("tether: too many sessions for this client", "limit", srv.opts.MaxSessionsPerClient, "remote", r.RemoteAddr)
		return nil, ErrTooManyForClient
	}
	info := session.RequestInfo{Header: httpx.KeptHeader(r.Header, KeptHeaderBytes), RemoteAddr: r.RemoteAddr, Auth: auth}
	onFinish := func(l *session.Local) {
		srv.store.Remove(l)
		srv.removeSubscriber(l)
		release()
	}
	var l *session.Local
	if ds, ok := srv.store.(session.DurableStore); ok {
		var err error
		l, err = session.NewJournaled(srv.sessionCfg, info, func(id, token string) (session.Journal, error) {
			return ds.OpenJournal(r.Context(), id, token, info)
		}, onFinish)
		if err != nil {
			release()
			srv.negotiated(NegotiateUnavailable)
			srv.opts.Logger.Warn("tether: the session's state could not be stored", "remote", r.RemoteAddr, "error", err)
			return nil, fmt.Errorf("%w: %w", ErrStateUnavailable, err)
		}
	} else {
		l = session.New(srv.sessionCfg, info, onFinish)
	}
	if err := srv.adopt(l, release, nil); err != nil {
		srv.negotiated(NegotiateTooManySessions)
		srv.opts.Logger.Warn("tether: too many sessions", "limit", srv.opts.MaxSessions, "remote", r.RemoteAddr)
		return nil, err
	}
	srv.negotiated(NegotiateOK)
	srv.opts.Logger.Info("tether: session opened", "session", l.ID(), "remote", r.RemoteAddr)
	srv.start(l)
	return l, nil
}

// adopt adds a session this server made to its store and to its topics'
// subscribers, with the topic offsets a session taken over continues from
// (resume). When the store is full it ends the session, calls release, and
// returns session.ErrTooManySessions.
func (srv *Server) adopt(l *session.Local, release func(), resume map[string]uint64) error {
	if err := srv.store.Add(l); err != nil {
		release()
		l.Abort(wire.CloseError{Code: wire.StatusTryAgainLater, Reason: "too many sessions"})
		return err
	}
	srv.addSubscriber(l, resume)
	if l.Finished() {
		// Its first-attach window ran out before Add (a loaded machine, a
		// short window): onFinish found nothing to remove, so remove it
		// here. Finished takes the lock onFinish runs under, so one of the
		// two always sees the other.
		srv.store.Remove(l)
		srv.removeSubscriber(l)
	}
	return nil
}

// start runs the application on a session: the Handler in a goroutine of
// its own, or the Callbacks.
func (srv *Server) start(l *session.Local) {
	s := l.Session
	srv.handlers.Add(1)
	start := time.Now()
	if cb, ok := srv.handler.(*Callbacks); ok {
		// No goroutine: the session calls back.
		if cb.Open != nil {
			cb.Open(s)
		}
		s.OnMessage(func(m wire.Message) { cb.Message(s, m) })
		s.OnClose(func(err error) {
			defer srv.handlers.Done()
			if cb.Close != nil {
				cb.Close(s, err)
			}
			srv.logClosed(s, start)
		})
		return
	}
	go func() {
		defer srv.handlers.Done()
		defer func() {
			s.Close(wire.StatusNormalClosure, "")
			srv.logClosed(s, start)
		}()
		srv.handler.ServeSession(s)
	}()
}

// restore goes on with a session that a durable store
// (session.DurableStore) took over from another node: it makes the
// session, stores it, subscribes it to its stored topics, and starts the
// application on it, which finds TakenOver true. With a broker that numbers
// its topics' messages (a cluster node with a History), each subscription
// continues from the topic offset the session had reached: what was
// published meanwhile is delivered first (broker.Resumable).
func (srv *Server) restore(info session.RequestInfo, r session.Restored) (*session.Local, error) {
	srv.mu.Lock()
	down := srv.shuttingDown
	srv.mu.Unlock()
	if down {
		return nil, ErrShuttingDown
	}
	l, err := session.Restore(srv.sessionCfg, info, r, func(l *session.Local) {
		srv.store.Remove(l)
		srv.removeSubscriber(l)
	})
	if err != nil {
		return nil, err
	}
	if err := srv.adopt(l, func() {}, maps.Clone(r.TopicOffsets)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), srv.opts.WriteTimeout)
	defer cancel()
	for _, topic := range r.Topics {
		if _, ok := r.TopicOffsets[topic]; !ok {
			// Nothing says how far the session had come in topic: its
			// node kept no topic history (cluster.NodeOptions.History), so
			// what was published to it while no node held the session
			// cannot be delivered. The session closes with 4000 topic gap
			// rather than go on without it in silence; its client learns
			// why.
			l.Close(wire.StatusResumeGap, broker.GapReason)
			break
		}
	}
	for _, topic := range r.Topics {
		if l.Err() != nil {
			break
		}
		if err := srv.subscribe(ctx, l.Session, topic, r.TopicInfo[topic], false); err != nil {
			if l.Err() != nil {
				// It closed as it was subscribed (4000 topic gap: what
				// it missed of a topic is no longer kept): its client
				// learns why, and its other topics do not matter.
				break
			}
			l.LeaseLost(fmt.Errorf("tether: resubscribing to %q: %w", topic, err))
			return nil, err
		}
	}
	srv.opts.Logger.Info("tether: session taken over", "session", l.ID(), "remote", info.RemoteAddr)
	srv.start(l)
	return l, nil
}

func (srv *Server) logClosed(s *session.Session, start time.Time) {
	var ce wire.CloseError
	errors.As(s.Err(), &ce)
	srv.opts.Logger.Info("tether: session closed", "session", s.ID(), "code", int(ce.Code), "reason", ce.Reason,
		"duration", time.Since(start).Round(time.Millisecond))
}

// CheckOrigin reports whether r's Origin is allowed: absent, the server's
// own, or in Options.AllowedOrigins. A bridge that serves requests of its
// own (package sockjs) applies it to each of them, as the server does.
func (srv *Server) CheckOrigin(r *http.Request) bool { return srv.origins.Allowed(r) }
