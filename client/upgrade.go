package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/tetherkit/tether/transport"
)

// Fast connect (PROTOCOL.md section 10): long polling carries the session
// at once, and the better transports are probed while it does; the first
// that works takes over. The session's maintain goroutine runs all of it.

// fastConnect reports whether the session attaches long polling first and
// upgrades from it, rather than trying the transports one after another.
func (s *Session) fastConnect() bool {
	if s.opts.DisableUpgrade || len(s.transports) < 2 {
		return false
	}
	for _, t := range s.transports {
		if t.name() == transport.LongPoll {
			return true
		}
	}
	return false
}

// attemptOrder returns the transports to try when attaching: with fast
// connect, long polling first, then the others in order (should long
// polling fail where another works); otherwise the preferred one first.
func (s *Session) attemptOrder() []clientTransport {
	first := s.preferred
	if s.fastConnect() || first == nil {
		first = s.transports[0]
		for _, t := range s.transports {
			if t.name() == transport.LongPoll && s.fastConnect() {
				first = t
			}
		}
	}
	ts := make([]clientTransport, 0, len(s.transports))
	ts = append(ts, first)
	for _, t := range s.transports {
		if t != first {
			ts = append(ts, t)
		}
	}
	return ts
}

// An upgrade round that leaves the session on a transport later in the
// order than the first (a proxy refused the WebSocket for a while, an attempt
// timed out under load) is followed by another after upgradeRetryMin,
// doubling up to upgradeRetryMax, with jitter: the session reaches the best
// transport that works within about upgradeRetryMax of its working, not at
// the next cut, which may be hours away.
const (
	upgradeRetryMin = 4 * time.Second
	upgradeRetryMax = 64 * time.Second
)

// upgradeToBest runs upgrade rounds while a carries the session: a first
// one at once, then, while the session is on a transport after the first
// in the order, another after each backoff delay; the delays start over
// when a round moves the session to a better transport (a new attach after
// a cut starts over too: maintain calls upgradeToBest again). It returns
// the connection carrying the session once it is on the first transport,
// or when that connection ends, or once Close was called: no round starts
// while the session closes.
func (s *Session) upgradeToBest(a *attached) *attached {
	delays := backoff{min: upgradeRetryMin, max: upgradeRetryMax}
	for failed := 0; ; failed++ {
		if s.out.closing() {
			return a
		}
		if b := s.upgrade(a); b != a {
			a, failed = b, 0
		}
		if a.t == s.transports[0] {
			return a
		}
		d := delays.delay(failed)
		s.log.Debug("tether upgrade again later", "transport", a.t.name(), "after", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-a.done:
			t.Stop()
			return a
		}
	}
}

// upgrade probes the transports before a's in the order, one after
// another, while a carries the session (long polling, or the transport an
// attach after a cut landed on), and returns the connection that carries it
// afterwards: the first transport that attached, or a itself. It returns
// early when a ends.
func (s *Session) upgrade(a *attached) *attached {
	again := true
	for i := 0; i < len(s.transports) && s.transports[i] != a.t; i++ {
		t := s.transports[i]
		select {
		case <-a.done:
			return a
		default:
		}
		b, err := s.tryUpgrade(a, t)
		if err == nil {
			s.log.Info("tether upgraded", "from", a.t.name(), "to", t.name())
			return b
		}
		s.log.Debug("tether upgrade failed", "transport", t.name(), "err", err)
		request := "attach"
		if errors.Is(err, errProbe) {
			request = "probe"
		}
		s.attemptFailed(request, t.name(), err)
		if errors.Is(err, errEndedEarly) && again {
			// Most likely superseded by a's request that reached the
			// server late: no evidence against t; once more.
			again = false
			i--
		}
	}
	return a
}

// errProbe marks the failure of a stream's probe, as opposed to its attach.
var errProbe = errors.New("probe failed")

// errEndedEarly is returned by tryUpgrade when the connection attached but
// ended before it could take over.
var errEndedEarly = errors.New("ended before it took over")

// tryUpgrade moves the session from a to transport t: a stream is probed
// first (probe=1, which attaches nothing); then t attaches while a starts
// no new poll or response, and takes over once a's request in flight has
// ended (had that request reached the server after t's attach, it
// superseded t, and t fails).
func (s *Session) tryUpgrade(a *attached, t clientTransport) (*attached, error) {
	if st, ok := t.(*streamTransport); ok {
		if err := s.probeStream(a, st.kind); err != nil {
			return nil, fmt.Errorf("%w: %w", errProbe, err)
		}
	}
	parked := s.gate.shut(a.l)
	defer s.gate.open()
	// A send acknowledging more than t's attach states would make that
	// attach arrive as a stale one (PROTOCOL.md 3).
	s.ackCeiling.Store(s.received.Load() + 1)
	defer s.ackCeiling.Store(0)
	// The attempt ends when a does: the session then attaches anew.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go cancelWhenDone(ctx, cancel, a.done)
	b, err := s.attempt(ctx, t, s.opts.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	// b is attached on the server; the poll it superseded ends at once.
	wait := time.NewTimer(s.opts.ConnectTimeout)
	defer wait.Stop()
	select {
	case <-parked:
	case <-a.done:
	case <-b.done:
	case <-wait.C:
	}
	select {
	case <-b.done:
		return nil, fmt.Errorf("%s: %w: %v", t.name(), errEndedEarly, b.err)
	case <-a.done:
		var ee *endError
		if !errors.As(a.err, &ee) && !errors.Is(a.err, errPollStopped) {
			break // the long poll broke meanwhile: b carries the session now
		}
		b.cancel()
		<-b.done
		return nil, errors.New("the session ended or is closing")
	default:
	}
	a.cancel()
	<-a.done
	s.preferred = t
	s.setCurrent(t.name())
	return b, nil
}

// probeStream asks for a stream of kind with probe=1: the server answers
// with the prelude and a heartbeat and attaches nothing. The first bytes
// must arrive within Options.StreamStartTimeout, or a proxy holds the
// stream back.
func (s *Session) probeStream(a *attached, kind string) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.StreamStartTimeout)
	defer cancel()
	go cancelWhenDone(ctx, cancel, a.done)
	neg := s.negotiated()
	q := url.Values{
		"session":  {neg.Session},
		"received": {strconv.FormatUint(s.received.Load(), 10)},
		"probe":    {"1"},
	}
	req, err := newRequest(ctx, http.MethodGet, endpoint(s.prefix, kind, q), neg.Token, nil)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil && s.ctx.Err() == nil {
			return fmt.Errorf("%s probe: no answer within %v: %w", kind, s.opts.StreamStartTimeout, ErrBufferedStream)
		}
		return fmt.Errorf("%s probe: %w", kind, redact(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s probe: %w", kind, &statusError{resp.StatusCode, ""})
	}
	var b [1]byte
	if _, err := resp.Body.Read(b[:]); err != nil {
		return fmt.Errorf("%s probe: %w: %w", kind, ErrBufferedStream, redact(err))
	}
	return nil
}

// acknowledgeable returns the received count a send request states: the
// session's, but no more than an attach under way states.
func (s *Session) acknowledgeable() uint64 {
	r := s.received.Load()
	if c := s.ackCeiling.Load(); c > 0 {
		r = min(r, c-1)
	}
	return r
}

// pollGate holds back the next poll or stream response of one connection
// while an upgrade attaches: it would supersede the connection being
// attached.
type pollGate struct {
	mu     sync.Mutex
	owner  *link         // guarded by mu; the connection held back
	shutCh chan struct{} // guarded by mu; nil while requests may start, closed by open
	parked chan struct{} // guarded by mu; closed when owner waits at the shut gate
	waited bool          // guarded by mu; parked is closed
}

// shut holds back owner's requests from now on; the channel it returns is
// closed once owner waits at the gate (its request in flight has ended).
func (g *pollGate) shut(owner *link) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.owner = owner
	g.shutCh, g.parked, g.waited = make(chan struct{}), make(chan struct{}), false
	return g.parked
}

// open lets polls start again.
func (g *pollGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shutCh != nil {
		close(g.shutCh)
		g.shutCh, g.owner = nil, nil
	}
}

// wait returns at once while the gate is open or l is not the connection
// it holds back; otherwise it reports l parked and waits until the gate
// opens or ctx is done.
func (g *pollGate) wait(ctx context.Context, l *link) error {
	g.mu.Lock()
	ch := g.shutCh
	if l != g.owner {
		ch = nil
	}
	if ch != nil && !g.waited {
		g.waited = true
		close(g.parked)
	}
	g.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cancelWhenDone calls cancel when done is closed, and returns when ctx
// ends: an attempt made beside a connection ends with it.
func cancelWhenDone(ctx context.Context, cancel context.CancelFunc, done <-chan struct{}) {
	select {
	case <-done:
		cancel()
	case <-ctx.Done():
	}
}
