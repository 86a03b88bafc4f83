package clustertest_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/clustertest"
)

// Durable mode in the kill test: leases short, so that a killed owner's
// sessions are taken over soon.
const durableLeaseTTL = time.Second

// killsPerSession is how many times, at least, the owner of each session
// of TestDurableKills is killed while its burst runs.
const killsPerSession = 2

// killLead is how many messages before each of its kill points (a third
// and two thirds of the burst) a session's owner may be killed: the kill
// comes while it sends, and its sender waits at the point until it came.
const killLead = 2000

// Bounds of the kills of one cluster: the sessions of a kill that do not
// go on within takeoverBound of it, or kills that do not end within
// killsBound, fail the test.
const (
	takeoverBound = 30 * time.Second
	killsBound    = 3 * time.Minute
)

// durableArgs are the flags that put a node in durable mode, with the
// sessions' state in the Redis at url.
func durableArgs(url string) []string {
	return []string{"-state", url, "-lease-ttl", durableLeaseTTL.String()}
}

// durableSession is a session of TestDurableKills and what the kills did
// to it.
type durableSession struct {
	cn     *conn
	id     string       // its id, which must not change
	echoed atomic.Int64 // the highest echo received
	kills  atomic.Int64 // kills of its owner while its burst ran
	done   atomic.Bool  // its burst is over

	mu       sync.Mutex
	killedAt time.Time       // guarded by mu: the last kill of its owner, while it has not gone on since
	mark     int64           // guarded by mu: the highest echo at that kill
	resumed  []time.Duration // guarded by mu: from each kill to the first echo beyond mark
	inFlight []int64         // guarded by mu: at each kill, messages sent and not yet echoed
}

// echo counts echo i, and measures the time from the kill to the first
// echo beyond what had come before it.
func (ds *durableSession) echo(i int) {
	if int64(i) <= ds.echoed.Load() {
		return
	}
	ds.echoed.Store(int64(i))
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if !ds.killedAt.IsZero() && int64(i) > ds.mark {
		ds.resumed = append(ds.resumed, time.Since(ds.killedAt))
		ds.killedAt = time.Time{}
	}
}

// killed records a kill of the session's owner.
func (ds *durableSession) killed(at time.Time) {
	ds.kills.Add(1)
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.killedAt, ds.mark = at, ds.echoed.Load()
	ds.inFlight = append(ds.inFlight, ds.cn.sent.Load()-ds.mark)
}

// recovering reports whether the session has not gone on since the last
// kill of its owner.
func (ds *durableSession) recovering() bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return !ds.killedAt.IsZero() && !ds.done.Load()
}

// TestDurableKills: the nodes in durable mode, one session per transport
// through nginx's round robin, each echoing exactMessages() messages; while
// they run, the node that owns a session (as the state in Redis says) is
// killed with SIGKILL and started again on its address, until the owner of
// every session was killed killsPerSession times mid-burst. Another node
// takes each session over and it goes on: every message and every echo
// exactly once, in order, the session's id unchanged, no new session.
// Meanwhile a node of the test's own publishes ticks to a topic that one
// more durable session subscribes to, whose owner is killed once more
// after the bursts while the ticks go on: it receives every tick once, in
// order, those published while no node held it included (the topic
// history).
func TestDurableKills(t *testing.T) {
	n := exactMessages()
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) {
			t.Parallel()
			e := startDurableCluster(t, bus)
			rdb := redis.NewClient(&redis.Options{Addr: e.state.Addr})
			t.Cleanup(func() { rdb.Close() })
			store, err := redisstate.New(rdb, &redisstate.Options{LeaseTTL: durableLeaseTTL})
			if err != nil {
				t.Fatal(err)
			}
			var sessions []*durableSession
			for _, tr := range transports {
				cn := dial(t, e.url, tr)
				sessions = append(sessions, &durableSession{cn: cn, id: cn.c.ID()})
			}
			tk := startTicker(t, e, rdb)
			ctx, cancel := context.WithTimeout(context.Background(), killsBound)
			defer cancel()
			var ticking sync.WaitGroup
			var tickKills []kill
			var tickErr error
			ticking.Go(func() { tickKills, tickErr = tk.run(ctx, store) })
			var killer sync.WaitGroup
			var kills []kill
			var killsOver atomic.Bool // no more kills will come
			killer.Go(func() {
				defer killsOver.Store(true)
				kills = e.killOwners(ctx, store, sessions, n)
			})

			began := time.Now()
			tallies := make([]*tally, len(sessions))
			errs := make([]error, len(sessions))
			var wg sync.WaitGroup
			for i, ds := range sessions {
				wg.Go(func() {
					defer ds.done.Store(true)
					tallies[i], errs[i] = ds.cn.echo(phase{tag: "m", n: n, received: ds.echo,
						before: func(ctx context.Context, i int) {
							// At a third and two thirds of the burst, wait
							// for the kill of the session's owner.
							for k := int64(1); k <= killsPerSession; k++ {
								if i == killPoint(n, k)+1 {
									for ctx.Err() == nil && ds.kills.Load() < k && !killsOver.Load() {
										time.Sleep(5 * time.Millisecond)
									}
								}
							}
						}})
				})
			}
			wg.Wait()
			took := time.Since(began)
			cancel()
			killer.Wait()
			ticking.Wait()
			if tickErr != nil {
				t.Errorf("ticks: %v", tickErr)
			}
			tk.check(bus)
			for _, k := range append(kills, tickKills...) {
				t.Logf("killed %s (%s) at %v: owner of %s", k.node, k.name, k.at.Sub(began).Round(time.Millisecond), strings.Join(k.of, " "))
			}
			for i, ds := range sessions {
				tr, tl, err := ds.cn.transport, tallies[i], errs[i]
				if err != nil {
					t.Errorf("%s: %v", tr, err)
				}
				if !tl.exact() {
					t.Errorf("%s: received %d of %d, lost %d, duplicated %d, reordered %d; want each once, in order", tr, tl.distinct, tl.n, tl.lost(), tl.dup, tl.reordered)
				}
				if got := ds.kills.Load(); got < killsPerSession {
					t.Errorf("%s: its owner was killed %d times mid-burst, want %d", tr, got, killsPerSession)
				}
				if rs := ds.cn.reconnected(); len(rs) > 0 {
					t.Errorf("%s: new sessions %v; want the first one throughout", tr, rs)
				}
				if id := ds.cn.c.ID(); id != ds.id {
					t.Errorf("%s: the session is now %q, want %q throughout", tr, id, ds.id)
				}
				_, epoch, err := store.Load(context.Background(), ds.id)
				if err != nil {
					t.Errorf("%s: the state of %s: %v", tr, ds.id, err)
				}
				ds.mu.Lock()
				resumed, inFlight := slices.Clone(ds.resumed), slices.Clone(ds.inFlight)
				ds.mu.Unlock()
				if len(resumed) < int(ds.kills.Load()) {
					t.Errorf("%s: went on after %d of its owner's %d kills", tr, len(resumed), ds.kills.Load())
				}
				recordDurable(t, durableRow{bus: bus, transport: tr, sent: tl.n, received: tl.received, lost: tl.lost(), duplicated: tl.dup, reordered: tl.reordered,
					kills: int(ds.kills.Load()), inFlight: inFlight, takeovers: int(epoch) - 1, resumes: ds.cn.resumes.Load(), sessions: 1 + len(ds.cn.reconnected()),
					resumed: resumed, took: took})
			}
		})
	}
}

// killPoint is the number of messages a session has sent when the kth
// kill of its owner is due.
func killPoint(n int, k int64) int { return int(int64(n) * k / (killsPerSession + 1)) }

// kill is one kill of TestDurableKills.
type kill struct {
	node, name string    // the killed node's id and name
	at         time.Time // when it had exited
	of         []string  // the transports of the sessions it owned
}

// killOwners kills, one at a time, the owner of a session that is near one
// of its kill points and needs a kill, and starts the node again on its
// address, until every session's owner was killed killsPerSession times or
// its burst is over. It waits before each kill until the sessions of the
// one before have gone on. It returns the kills, once done or when ctx
// ends.
func (e *env) killOwners(ctx context.Context, store *redisstate.Store, sessions []*durableSession, n int) []kill {
	var kills []kill
	var last time.Time // of the last kill
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				e.t.Errorf("the kills did not end within %v: %d kills", killsBound, len(kills))
			}
			return kills
		case <-tick.C:
		}
		pending, recovering := false, false
		var due *durableSession
		for _, ds := range sessions {
			k := ds.kills.Load()
			if ds.done.Load() || k >= killsPerSession {
				continue
			}
			pending = true
			if due == nil && ds.cn.sent.Load() >= int64(killPoint(n, k+1)-min(killLead, n/10)) {
				due = ds
			}
		}
		for _, ds := range sessions {
			recovering = recovering || ds.recovering()
		}
		if !pending {
			return kills
		}
		if recovering && time.Since(last) > takeoverBound {
			var stuck []string
			for _, ds := range sessions {
				if ds.recovering() {
					stuck = append(stuck, ds.cn.transport)
				}
			}
			e.t.Errorf("the sessions %v did not go on within %v of the kill of %s (%s)", stuck, takeoverBound, kills[len(kills)-1].node, kills[len(kills)-1].name)
			return kills
		}
		if recovering || due == nil {
			continue
		}
		owner, err := store.Owner(ctx, due.id)
		if err != nil {
			if ctx.Err() == nil {
				e.t.Errorf("the owner of %s: %v", due.id, err)
			}
			return kills
		}
		if owner == "" { // between two owners
			continue
		}
		i := slices.IndexFunc(e.nodes, func(p *clustertest.NodeProcess) bool { return p.Echo == owner })
		if i < 0 {
			e.t.Errorf("the owner of %s is %q, no node of the cluster (%v)", due.id, owner, e.nodes)
			return kills
		}
		var victims []*durableSession
		k := kill{node: owner, name: e.nodes[i].Name}
		for _, ds := range sessions {
			// A session with every echo in is over, or waits at its kill
			// point for this kill, after which it sends again.
			if o, err := store.Owner(ctx, ds.id); err == nil && o == owner && !ds.done.Load() && ds.echoed.Load() < int64(n) {
				victims = append(victims, ds)
				k.of = append(k.of, ds.cn.transport)
			}
		}
		e.nodes[i].Kill()
		k.at = time.Now()
		last = k.at
		for _, ds := range victims {
			ds.killed(k.at)
		}
		kills = append(kills, k)
		if err := e.restart(i); err != nil {
			e.t.Errorf("starting %s again: %v", k.name, err)
			return kills
		}
	}
}

// restart starts node i again on its address, after a kill, with the same
// flags; it gets a new id.
func (e *env) restart(i int) error {
	old := e.nodes[i]
	n, err := clustertest.StartNodeProcess(bin, e.engine.URL(), old.Name, e.logs, append(slices.Clone(e.args), "-listen", old.Addr)...)
	if err != nil {
		return err
	}
	e.t.Cleanup(n.Stop)
	e.nodes[i] = n
	return nil
}

// durableRow is one line of the report's table of TestDurableKills.
type durableRow struct {
	bus, transport   string
	sent, received   int
	lost, duplicated int
	reordered        int
	kills, takeovers int
	inFlight         []int64 // at each kill: sent and not echoed
	resumes          int64   // the client's connections lost and resumed
	sessions         int     // the sessions the client had: 1 throughout
	resumed          []time.Duration
	took             time.Duration
}

var durableRows []durableRow // guarded by rowsMu

// recordDurable adds r to the report, and logs it.
func recordDurable(t *testing.T, r durableRow) {
	t.Logf("%s %s durable, owner killed: sent %d, received %d, lost %d, duplicated %d, reordered %d, kills %d (in flight %v), takeovers %d, resumes %d, sessions %d, going on after %v, %v",
		r.bus, r.transport, r.sent, r.received, r.lost, r.duplicated, r.reordered, r.kills, r.inFlight, r.takeovers, r.resumes, r.sessions, r.resumed, r.took.Round(time.Millisecond))
	rowsMu.Lock()
	defer rowsMu.Unlock()
	durableRows = append(durableRows, r)
}

// durableReport formats the table of TestDurableKills, or "" when it did
// not run. The caller holds rowsMu.
func durableReport() string {
	if len(durableRows) == 0 {
		return ""
	}
	slices.SortStableFunc(durableRows, func(a, b durableRow) int {
		return cmp.Or(cmp.Compare(a.bus, b.bus), cmp.Compare(a.transport, b.transport))
	})
	var b strings.Builder
	fmt.Fprintf(&b, "Durable mode (-state, -lease-ttl %v), the owner of each session killed with SIGKILL mid-burst and started again (TestDurableKills)\n", durableLeaseTTL)
	fmt.Fprintf(&b, "%-6s %-10s %9s %9s %6s %6s %9s %5s %9s %-18s %7s %8s  %-22s %8s\n", "bus", "transport", "sent", "received", "lost", "dup", "reordered", "kills", "takeovers", "in flight at kills", "resumes", "sessions", "going on after kill", "time")
	for _, r := range durableRows {
		var inFlight, resumed []string
		for _, f := range r.inFlight {
			inFlight = append(inFlight, strconv.FormatInt(f, 10))
		}
		for _, d := range r.resumed {
			resumed = append(resumed, fmt.Sprintf("%.1fs", d.Seconds()))
		}
		fmt.Fprintf(&b, "%-6s %-10s %9d %9d %6d %6d %9d %5d %9d %-18s %7d %8d  %-22s %7.1fs\n", r.bus, r.transport, r.sent, r.received, r.lost, r.duplicated, r.reordered,
			r.kills, r.takeovers, strings.Join(inFlight, " "), r.resumes, r.sessions, strings.Join(resumed, " "), r.took.Seconds())
	}
	b.WriteString("kills: of the node owning the session (per the state in Redis) while its burst ran; takeovers: owner changes (the lease's epoch - 1); in flight: messages sent and not yet echoed at each kill; " +
		"going on after kill: from the kill to the first echo beyond what had come before it; sessions: 1 = the same session throughout\n")
	return b.String()
}
