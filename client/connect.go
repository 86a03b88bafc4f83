package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/wire"
)

// attached is one connection that a transport's run carries.
type attached struct {
	t      clientTransport
	l      *link
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	err    error         // run's result, set before done is closed
}

// attempt starts t.run and waits until the connection is established,
// fails, or timeout or ctx ends the attempt. On failure it stops the
// connection and waits for its goroutines before returning.
func (s *Session) attempt(ctx context.Context, t clientTransport, timeout time.Duration) (*attached, error) {
	cctx, cancel := context.WithCancel(s.ctx)
	l := s.newLink()
	a := &attached{t: t, l: l, cancel: cancel, done: make(chan struct{})}
	go func() {
		a.err = t.run(cctx, l)
		close(a.done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case <-l.est:
		s.attached.Store(true)
		return a, nil
	case <-a.done:
		select {
		case <-l.est:
			s.attached.Store(true)
			return a, nil // established, then broke at once: the caller sees it
		default:
		}
		cancel()
		if a.err == nil {
			return nil, fmt.Errorf("%s: connection ended", t.name())
		}
		return nil, a.err
	case <-timer.C:
		err = fmt.Errorf("%s: not established within %v", t.name(), timeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	<-a.done
	var ee *endError
	if errors.As(a.err, &ee) {
		return nil, a.err
	}
	return nil, err
}

// connectFirst attaches the first connection, trying each transport once,
// in order; after a request answered 404 that starts the fall back to
// websocket alone (balancer.go), WebSocket attaches in rounds as resume
// does.
func (s *Session) connectFirst(ctx context.Context) (*attached, error) {
	var errs []error
	for _, t := range s.attemptOrder() {
		a, err := s.attempt(ctx, t, s.opts.ConnectTimeout)
		if err == nil {
			s.preferred = t
			s.setCurrent(t.name())
			s.log.Debug("tether attached", "transport", t.name())
			return a, nil
		}
		var ee *endError
		if errors.As(err, &ee) {
			s.reportGone("attach", t.name(), err)
			if s.fallBack(err) {
				return s.connectAlone(ctx)
			}
			return nil, ee.ce
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.Debug("tether transport failed", "transport", t.name(), "err", err)
		s.attemptFailed("attach", t.name(), err)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrNoTransport, errors.Join(errs...))
}

// connectAlone attaches the first connection of a session fallen back to
// websocket alone, in rounds until the resume window has passed (see
// resume); its errors are connectFirst's.
func (s *Session) connectAlone(ctx context.Context) (*attached, error) {
	a, err := s.resume(ctx)
	var ee *endError
	switch {
	case err == nil:
		return a, nil
	case errors.As(err, &ee):
		return nil, ee.ce
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	return nil, err
}

// maintain runs while the session lives: it waits for the attached
// connection to end, attaches again after a cut, and ends the session when
// the connection says it is over or the resume window has passed. It is the
// only goroutine that attaches, and it closes done last.
func (s *Session) maintain(a *attached) {
	defer func() {
		s.setCurrent("")
		s.cancel()
		if s.ownHTTP {
			s.hc.CloseIdleConnections()
		}
		close(s.done)
	}()
	for {
		if s.fastConnect() {
			a = s.upgradeToBest(a)
		}
		<-a.done
		a.cancel()
		s.setCurrent("")
		var ee *endError
		var err error
		if errors.As(a.err, &ee) && !ee.local && !ee.notify && ee.ce.Code.Reconnects() && !s.opts.DisableReconnect && !s.out.closing() {
			if a, err = s.renegotiate(ee.ce); err != nil {
				s.endAfter(err)
				return
			}
			continue
		}
		if ee != nil && s.fallBack(a.err) {
			// The request answered 404 was reported where it failed
			// (runBesideSends).
			if a, err = s.resume(s.ctx); err != nil {
				s.endAfter(err)
				return
			}
			continue
		}
		if ee != nil {
			by := endedRemotely
			if ee.local {
				by = endedByClose
			}
			s.end(ee.ce, by)
			return
		}
		if s.ctx.Err() != nil {
			return // ended by Close's timeout
		}
		s.log.Info("tether connection lost", "transport", a.t.name(), "err", a.err)
		s.noteCut(a.l)
		if fn := s.opts.OnResuming; fn != nil {
			fn()
		}
		if a, err = s.resume(s.ctx); err != nil {
			s.endAfter(err)
			return
		}
		if fn := s.opts.OnResumed; fn != nil {
			fn()
		}
	}
}

// endAfter ends the session when err, why attaching anew failed, says it is
// over (an *endError); errStopped means it has ended already.
func (s *Session) endAfter(err error) {
	var ee *endError
	if errors.As(err, &ee) {
		s.end(ee.ce, endedRemotely)
	}
}

// renegotiate negotiates a new session after the server closed the one in
// use with ce, a code after which clients reconnect, and attaches its first
// connection. It tries again, with backoff, until it succeeds, Close is
// called (it then returns the close request as an *endError) or the
// session's context ends; a negotiate refused with a 4xx ends the session
// with 1008 and the server's message, no usable transport with 4004.
func (s *Session) renegotiate(ce wire.CloseError) (*attached, error) {
	s.log.Info("tether negotiating a new session", "code", int(ce.Code), "reason", ce.Reason)
	// The messages the old session had not acknowledged are dropped, as
	// the JavaScript client does; what the application sends from now on,
	// while the new session is negotiated, is the new session's.
	s.out.reset()
	s.received.Store(0)
	s.ackedSent.Store(0)
	s.sendLimit.Store(0)
	if fn := s.opts.OnReconnecting; fn != nil {
		fn(ce)
	}
	b := backoff{min: s.opts.MinDelay, max: s.opts.MaxDelay}
	for attempt := 0; ; attempt++ {
		t := time.NewTimer(b.delay(attempt))
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return nil, errStopped
		}
		if ce, ok := s.out.closeRequest(); ok {
			return nil, &endError{ce: ce, local: true}
		}
		nctx, cancel := context.WithTimeout(s.ctx, s.opts.ConnectTimeout)
		neg, err := negotiate(nctx, s.hc, s.prefix, s.opts.Header)
		cancel()
		var ne *NegotiateError
		switch {
		case errors.Is(err, ErrUnsupportedProtocol):
			return nil, endSession(wire.StatusProtocolError, httpx.MsgUnsupportedVersion)
		case errors.As(err, &ne) && ne.Status >= 400 && ne.Status < 500:
			s.attemptFailed("negotiate", "", err)
			return nil, endSession(wire.StatusPolicyViolation, ne.Message)
		case err != nil && s.ctx.Err() != nil:
			return nil, errStopped
		case err != nil:
			s.log.Debug("tether negotiate failed", "err", err)
			s.attemptFailed("negotiate", "", err)
			continue
		}
		ts, err := chooseTransports(s.opts.Transports, neg.Transports)
		if err != nil {
			return nil, endSession(wire.StatusNoTransport, "no transport")
		}
		s.neg.Store(neg)
		s.transports = ts
		s.attached.Store(false)
		s.fellBack.Store(false)
		a, err := s.connectFirst(s.ctx)
		var ce wire.CloseError
		switch {
		case err == nil:
			s.log.Info("tether new session", "session", neg.Session)
			return a, nil
		case errors.As(err, &ce):
			return nil, endSession(ce.Code, ce.Reason)
		case s.ctx.Err() != nil:
			return nil, errStopped
		}
		s.log.Debug("tether new session could not attach", "err", err)
	}
}

// resume attaches a new connection to the same session after a cut (or
// after the fall back to websocket alone): the transport that worked last
// first, then the others, in rounds separated by backoff, until the
// server's resume window has passed since the cut (see fallBackEnd) or ctx
// is done (errStopped).
func (s *Session) resume(ctx context.Context) (*attached, error) {
	deadline := time.Now().Add(s.negotiated().resumeWindow())
	b := backoff{min: s.opts.MinDelay, max: s.opts.MaxDelay}
	for round := 0; ; round++ {
		if round > 0 {
			wait := min(b.delay(round-1), time.Until(deadline))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, errStopped
			}
		}
		for _, t := range s.attemptOrder() {
			left := time.Until(deadline)
			if left <= 0 {
				return nil, s.fallBackEnd()
			}
			a, err := s.attempt(ctx, t, min(s.opts.ConnectTimeout, left))
			if err == nil {
				if t != s.preferred {
					s.log.Info("tether fell back", "from", s.preferred.name(), "to", t.name())
				}
				s.preferred = t
				s.setCurrent(t.name())
				s.log.Debug("tether attached again", "transport", t.name())
				return a, nil
			}
			var ee *endError
			if errors.As(err, &ee) {
				s.reportGone("attach", t.name(), err)
				return nil, err
			}
			if ctx.Err() != nil || s.ctx.Err() != nil {
				return nil, errStopped
			}
			s.log.Debug("tether attach failed", "transport", t.name(), "err", err)
			s.attemptFailed("attach", t.name(), err)
		}
	}
}
