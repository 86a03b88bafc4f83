package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetherkit/tether/session"
)

// attached is one connection that a transport's run carries.
type attached struct {
	t      transport
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	err    error         // run's result, set before done is closed
}

// attempt starts t.run and waits until the connection is established,
// fails, or timeout or ctx ends the attempt. On failure it stops the
// connection and waits for its goroutines before returning.
func (s *Session) attempt(ctx context.Context, t transport, timeout time.Duration) (*attached, error) {
	cctx, cancel := context.WithCancel(s.ctx)
	l := s.newLink()
	a := &attached{t: t, cancel: cancel, done: make(chan struct{})}
	go func() {
		a.err = t.run(cctx, l)
		close(a.done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case <-l.est:
		return a, nil
	case <-a.done:
		select {
		case <-l.est:
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
// in order.
func (s *Session) connectFirst(ctx context.Context) (*attached, error) {
	var errs []error
	for _, t := range s.transports {
		a, err := s.attempt(ctx, t, s.opts.ConnectTimeout)
		if err == nil {
			s.preferred = t
			s.setCurrent(t.name())
			s.log.Debug("tether attached", "transport", t.name())
			return a, nil
		}
		var ee *endError
		if errors.As(err, &ee) {
			return nil, ee.ce
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.Debug("tether transport failed", "transport", t.name(), "err", err)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrNoTransport, errors.Join(errs...))
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
		<-a.done
		a.cancel()
		s.setCurrent("")
		var ee *endError
		if errors.As(a.err, &ee) {
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
		var err error
		if a, err = s.reattach(); err != nil {
			if errors.As(err, &ee) {
				s.end(ee.ce, endedRemotely)
			}
			return
		}
	}
}

// reattach attaches a new connection after a cut: the transport that
// worked last first, then the others, in rounds separated by backoff, until
// the server's resume window has passed since the cut.
func (s *Session) reattach() (*attached, error) {
	deadline := time.Now().Add(s.neg.resumeWindow())
	b := backoff{min: s.opts.ReconnectMin, max: s.opts.ReconnectMax}
	for round := 0; ; round++ {
		if round > 0 {
			wait := min(b.delay(round-1), time.Until(deadline))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return nil, errStopped
			}
		}
		for _, t := range s.order() {
			left := time.Until(deadline)
			if left <= 0 {
				return nil, endSession(session.StatusSessionExpired, "resume window passed")
			}
			a, err := s.attempt(s.ctx, t, min(s.opts.ConnectTimeout, left))
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
				return nil, err
			}
			if s.ctx.Err() != nil {
				return nil, errStopped
			}
			s.log.Debug("tether attach failed", "transport", t.name(), "err", err)
		}
	}
}

// order returns the transports to try when attaching again: the preferred
// one first, then the others in their usual order.
func (s *Session) order() []transport {
	ts := make([]transport, 0, len(s.transports))
	ts = append(ts, s.preferred)
	for _, t := range s.transports {
		if t != s.preferred {
			ts = append(ts, t)
		}
	}
	return ts
}
