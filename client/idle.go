package client

import (
	"strconv"
	"time"

	"github.com/tetherkit/tether/transport"
)

// Proxies that close idle connections (PROTOCOL.md section 10.4): a proxy
// whose idle timeout is shorter than the heartbeat interval cuts every
// connection that carries nothing for that long. Two such cuts in a row,
// after about the same idle time T, show it; the session then attaches
// with heartbeatMs=T/2, which the server applies to the connection, and
// uses that interval itself.

// minIdleCut is the shortest idle time before a cut that counts as a
// proxy's idle timeout: half of it is the shortest interval a client may
// ask for.
const minIdleCut = 2 * transport.MinHeartbeatInterval

// idleCuts is what the session learned from its cuts. Only the goroutine
// that attaches (Dial's, then maintain) uses it.
type idleCuts struct {
	neg  *negotiation  // the session the rest belongs to
	hb   time.Duration // the shortened heartbeat interval; 0: the negotiated one
	last time.Duration // the idle time before the last cut, when it was an idle cut
}

// heartbeat returns the heartbeat interval for the next connection: the
// negotiated one, or the shorter one the idle cuts led to.
func (s *Session) heartbeat() time.Duration {
	neg := s.negotiated()
	if s.idle.neg == neg && s.idle.hb > 0 {
		return s.idle.hb
	}
	return neg.heartbeat()
}

// noteCut is called when l, which worked, was cut. A cut after l carried
// nothing for at least minIdleCut and less than its heartbeat interval is
// an idle cut; a second in a row whose idle time differs by at most a
// quarter shortens the heartbeat interval to half the shorter of the two.
func (s *Session) noteCut(l *link) {
	idle := time.Since(time.Unix(0, l.active.Load()))
	if neg := s.negotiated(); s.idle.neg != neg {
		s.idle = idleCuts{neg: neg} // a new session starts over
	}
	last := s.idle.last
	s.idle.last = 0
	if idle < minIdleCut || idle >= l.hb {
		return
	}
	if last == 0 || max(idle, last)-min(idle, last) > max(idle, last)/4 {
		s.idle.last = idle
		return
	}
	hb := max(transport.MinHeartbeatInterval, (min(idle, last) / 2).Truncate(time.Millisecond))
	s.idle = idleCuts{neg: s.idle.neg, hb: hb}
	s.log.Info("tether heartbeat shortened", "heartbeat", hb, "idle", idle)
}

// touch records that l carried something now.
func (l *link) touch(now time.Time) {
	l.active.Store(now.UnixNano())
}

// heartbeatParam returns the query parameter that asks for l's heartbeat
// interval, "" when it is the negotiated one.
func (l *link) heartbeatParam() string {
	if l.hb <= 0 || l.hb >= l.s.negotiated().heartbeat() {
		return ""
	}
	return strconv.FormatInt(l.hb.Milliseconds(), 10)
}
