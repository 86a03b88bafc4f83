package clustertest_test

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/wire"
)

// recoverBound bounds how long after the kill the sessions of the killed
// node may take to be on a new session.
const recoverBound = 60 * time.Second

// afterReconnect is how many messages the sessions of the killed node
// send, at least, on their new session in the phase of the kill.
const afterReconnect = 200

// owner returns the node that holds the session id, or nil.
func (e *env) owner(id string) *clustertest.NodeProcess {
	prefix, _, _ := strings.Cut(id, ".")
	for _, n := range e.nodes {
		if n.Echo == prefix {
			return n
		}
	}
	return nil
}

// lastLost returns the highest number sent and not received, or 0.
func (tl *tally) lastLost() int {
	for i := tl.n; i >= 1; i-- {
		if i >= len(tl.seen) || !tl.seen[i] {
			return i
		}
	}
	return 0
}

// spread dials sessions through nginx, per transport, until one is held by
// victim and one by another node, and returns them: nginx's round robin
// decides which node a negotiate reaches.
func spread(t *testing.T, e *env, victim *clustertest.NodeProcess) (ofVictim, ofOthers []*conn) {
	t.Helper()
	for _, tr := range transports {
		var mine, other *conn
		for range 12 {
			cn := dial(t, e.url, tr)
			switch o := e.owner(cn.firstID); {
			case o == nil:
				t.Fatalf("session %q: no node holds it (nodes %v)", cn.firstID, e.nodes)
			case o == victim && mine == nil:
				mine = cn
			case o != victim && other == nil:
				other = cn
			default:
				cn.close()
			}
			if mine != nil && other != nil {
				break
			}
		}
		if mine == nil || other == nil {
			t.Fatalf("%s: 12 sessions through nginx, and not one held by %s and one by another node", tr, victim.Name)
		}
		ofVictim, ofOthers = append(ofVictim, mine), append(ofOthers, other)
	}
	return ofVictim, ofOthers
}

// TestNodeKilled: one node of three is killed with SIGKILL while every
// session sends. The sessions it held end with 4006 (owner gone), and the
// client negotiates a new session, with another node, by itself; nothing
// sent from then on is lost. The sessions held by the other nodes go on
// with every message exactly once, in order, their connections moving off
// the dead node.
func TestNodeKilled(t *testing.T) {
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) {
			t.Parallel()
			e := startCluster(t, bus)
			victim := e.nodes[1]
			ofVictim, ofOthers := spread(t, e, victim)
			var killedAt atomic.Pointer[time.Time]
			kill := func() {
				victim.Kill()
				now := time.Now()
				killedAt.Store(&now)
			}
			// The phase during the kill goes on until every session of the
			// victim has been on a new session for afterReconnect messages
			// (it sent them after OnReconnecting: none may be lost), or
			// recoverBound after the kill.
			var over atomic.Bool // once true, stays: a session's next phase counts again from 0
			done := func(*conn) bool {
				at := killedAt.Load()
				switch {
				case over.Load():
					return true
				case at == nil:
					return false
				case time.Since(*at) > recoverBound:
					over.Store(true)
					return true
				}
				for _, cn := range ofVictim {
					rs := cn.reconnected()
					if len(rs) == 0 || int(cn.sent.Load()) < rs[0].sent+afterReconnect {
						return false
					}
				}
				over.Store(true)
				return true
			}
			began := time.Now()
			outs := runPhases(append(slices.Clone(ofVictim), ofOthers...), kill, done)
			took := time.Since(began)
			if killedAt.Load() == nil {
				t.Fatal("the node was never killed")
			}
			for i, cn := range append(slices.Clone(ofVictim), ofOthers...) {
				o, held := outs[i], i < len(ofVictim)
				check := func(what string, tl *tally, err error) {
					if err != nil {
						t.Errorf("%s session of %s: phase %s: %v", cn.transport, whose(held), what, err)
					}
					if !tl.exact() {
						t.Errorf("%s session of %s: phase %s: received %d of %d, lost %d, duplicated %d, reordered %d; want each once, in order",
							cn.transport, whose(held), what, tl.distinct, tl.n, tl.lost(), tl.dup, tl.reordered)
					}
				}
				check("warm", o.warm, o.errs[0])
				check("after", o.after, o.errs[2])
				rs := cn.reconnected()
				scenario := "node killed, others'"
				if held {
					scenario = "node killed, its own"
					switch {
					case len(rs) == 0:
						t.Errorf("%s session of the killed node: no new session within %v of the kill", cn.transport, recoverBound)
					case rs[0].code != wire.StatusOwnerGone:
						t.Errorf("%s session of the killed node: OnReconnecting(%d), want %d (owner gone)", cn.transport, rs[0].code, wire.StatusOwnerGone)
					}
					if o := e.owner(cn.c.ID()); o == nil || o == victim {
						t.Errorf("%s session of the killed node: now %q, want one held by a live node", cn.transport, cn.c.ID())
					}
					// What was sent before the new session may be lost;
					// nothing after.
					if o.errs[1] != nil {
						t.Errorf("%s session of the killed node: phase during: %v", cn.transport, o.errs[1])
					}
					if last := o.during.lastLost(); len(rs) > 0 && last > rs[0].sent+1 {
						t.Errorf("%s session of the killed node: message %d lost, sent after the new session began (after %d)", cn.transport, last, rs[0].sent)
					}
					if o.during.dup != 0 || o.during.reordered != 0 {
						t.Errorf("%s session of the killed node: duplicated %d, reordered %d; want none", cn.transport, o.during.dup, o.during.reordered)
					}
				} else {
					check("during", o.during, o.errs[1])
					if len(rs) > 0 {
						t.Errorf("%s session of a live node: new sessions %v; want none", cn.transport, rs)
					}
				}
				record(t, phasesRow(bus, cn, scenario, o, took))
			}
		})
	}
}

// whose names the node that holds a session of TestNodeKilled.
func whose(ofVictim bool) string {
	if ofVictim {
		return "the killed node"
	}
	return "a live node"
}
