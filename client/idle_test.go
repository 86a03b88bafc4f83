package client

import (
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/transport"
)

// idleCutTests are pairs of cuts in order, each with the idle time before
// it, and the heartbeat interval after the pair (the negotiated one is 30 s).
var idleCutTests = []struct {
	first, second, want time.Duration
	why                 string
}{
	{6 * time.Second, 12 * time.Second, 30 * time.Second, "not alike"},
	{500 * time.Millisecond, 600 * time.Millisecond, 30 * time.Second, "too short for an idle timeout"},
	{5 * time.Second, 31 * time.Second, 30 * time.Second, "the second idle longer than the heartbeat: no idle cut"},
	{5 * time.Second, 5200 * time.Millisecond, 2500 * time.Millisecond, "a proxy cutting after about 5 s"},
	{4 * time.Second, 4100 * time.Millisecond, 2500 * time.Millisecond, "not shorter than the heartbeat now: no idle cut"},
	{2400 * time.Millisecond, 2300 * time.Millisecond, 1150 * time.Millisecond, "cut again at the shorter interval: shortened again"},
	{2 * time.Second, 2 * time.Second, 1150 * time.Millisecond, "not shorter than the heartbeat: no idle cut"},
}

// TestNoteCut: two cuts in a row after about the same idle time, shorter
// than the heartbeat interval, shorten it (PROTOCOL.md 10.4); the attaches
// that follow ask for it; a new session starts from the negotiated one.
func TestNoteCut(t *testing.T) {
	s := &Session{log: slog.New(slog.DiscardHandler), prefix: &url.URL{Scheme: "http", Host: "127.0.0.1:1", Path: "/rt/"}}
	s.neg.Store(&negotiation{transport.Negotiation{Session: "S", Token: "T", HeartbeatMs: 30000}})
	cut := func(idle time.Duration) {
		l := &link{s: s, hb: s.heartbeat()}
		l.touch(time.Now().Add(-idle))
		s.noteCut(l)
	}
	if got := (&link{s: s, hb: s.heartbeat()}).query(0, 1).Get("heartbeatMs"); got != "" {
		t.Fatalf("heartbeatMs = %q before any cut, want none", got)
	}
	for _, c := range idleCutTests {
		cut(c.first)
		cut(c.second)
		if got := s.heartbeat(); got != c.want {
			t.Errorf("after cuts idle %v and %v (%s): heartbeat %v, want %v", c.first, c.second, c.why, got, c.want)
		}
	}
	l := &link{s: s, hb: s.heartbeat()}
	if got := l.query(0, 1).Get("heartbeatMs"); got != "1150" {
		t.Errorf("query heartbeatMs = %q, want 1150", got)
	}
	if got := string(l.requestURL("longpoll").base); !strings.HasSuffix(got, "&heartbeatMs=1150") {
		t.Errorf("longpoll URL %q, want it to ask for heartbeatMs=1150", got)
	}
	// One idle cut, then a new session: its first idle cut does not pair
	// with the old session's.
	cut(5 * time.Second)
	s.neg.Store(&negotiation{transport.Negotiation{Session: "S2", Token: "T2", HeartbeatMs: 30000}})
	if got := s.heartbeat(); got != 30*time.Second {
		t.Errorf("a new session's heartbeat: %v, want the negotiated 30s", got)
	}
	cut(5 * time.Second)
	if got := s.heartbeat(); got != 30*time.Second {
		t.Errorf("a new session's heartbeat after one idle cut: %v, want the negotiated 30s", got)
	}
	cut(5 * time.Second)
	if got := s.heartbeat(); got != 2500*time.Millisecond {
		t.Errorf("a new session's heartbeat after two idle cuts: %v, want 2.5s", got)
	}
}
