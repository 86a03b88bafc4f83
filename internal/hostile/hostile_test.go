package hostile_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/hostile"
	"github.com/tetherkit/tether/internal/nginxtest"
	"github.com/tetherkit/tether/wire"
)

// report is where the tests write their table, printed by scripts/test.sh
// after the Go tests (go test shows nothing of a passing package).
const report = "../../test-output/hostile-go.txt"

func TestMain(m *testing.M) {
	os.MkdirAll(filepath.Dir(report), 0o755)
	os.Remove(report)
	goleak.VerifyTestMain(m)
}

// Bounds of the waits: a wait that ends by its bound fails the test with
// what it saw. None is a measure of speed.
const (
	dialBound  = 30 * time.Second
	phaseBound = 40 * time.Second
	closeBound = 15 * time.Second
	// roundRobinBound is the phase bound in round robin, where sessions
	// that hit the server not holding them must end rather than hang.
	roundRobinBound = 10 * time.Second
	// adaptBound bounds the first idle period of the idle setup, until the
	// client has shortened its heartbeat (two cuts by the 5 s proxy
	// timeout, and a little); afterIdle is the second idle period, three of
	// the proxy's timeouts.
	adaptBound = 40 * time.Second
	afterIdle  = 15 * time.Second
	// upgradeBound bounds the wait for a later upgrade round to move a
	// session to WebSocket once it works: longer than the clients' longest
	// delay between rounds (64 s), and one round.
	upgradeBound = 90 * time.Second
)

// run is one session's record: what the table prints.
type run struct {
	t         *testing.T
	label     string // the row's name in the table
	best      string // the transport it must end on
	c         *client.Session
	start     time.Time
	transport string        // the transport before Close
	open      time.Duration // Dial's return
	first     time.Duration // the first echo
	resumes   atomic.Int64  // OnResuming calls: lost connections
	renewed   atomic.Int64  // OnReconnecting calls: new sessions
	failedMu  sync.Mutex
	failed    []client.AttemptError // guarded by failedMu; what OnError reported
	heartbeat atomic.Int64          // the interval of the last "tether heartbeat shortened" logged, ns
	lost, dup int                   // messages, over every phase
	reordered bool
	ended     error  // the session's end, when a phase saw it
	hung      string // what a phase that ended by its bound saw
	extra     []string
	pad       int // bytes appended to each numbered message of a phase
}

// heartbeatLog is a slog.Handler that keeps the interval of the client's
// "heartbeat shortened" records (no hook reports it).
type heartbeatLog struct{ r *run }

func (h heartbeatLog) Enabled(context.Context, slog.Level) bool { return true }
func (h heartbeatLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "tether heartbeat shortened" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "heartbeat" {
				h.r.heartbeat.Store(int64(a.Value.Duration()))
			}
			return true
		})
	}
	return nil
}
func (h heartbeatLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h heartbeatLog) WithGroup(string) slog.Handler      { return h }

// start runs setup name behind real nginx.
func start(t *testing.T, name string) *hostile.Env {
	t.Helper()
	nginxtest.Require(t)
	s, err := hostile.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	env, err := hostile.Start(s, "../../README.md", "127.0.0.1:0", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env
}

// dial connects with the default options (transports forced when given)
// and sends "first", whose echo the first phase waits for. A failed Dial is returned: it is
// the event a failure must surface as.
func dial(t *testing.T, env *hostile.Env, transports ...string) (*run, error) {
	r := &run{t: t, start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), dialBound)
	defer cancel()
	c, err := client.Dial(ctx, env.URL, &client.Options{
		Transports:     transports,
		Logger:         slog.New(heartbeatLog{r}),
		OnResuming:     func() { r.resumes.Add(1) },
		OnReconnecting: func(wire.CloseError) { r.renewed.Add(1) },
		OnError: func(e *client.AttemptError) {
			r.failedMu.Lock()
			defer r.failedMu.Unlock()
			r.failed = append(r.failed, *e)
		},
	})
	if ctx.Err() != nil {
		t.Fatalf("Dial hung: no result within %v (%v)", dialBound, err)
	}
	if err != nil {
		return r, err
	}
	r.c = c
	r.open = time.Since(r.start)
	t.Cleanup(func() { c.Close(wire.StatusNormalClosure, "") })
	r.send("first")
	return r, nil
}

// phase sends tag1 .. tagN (after the messages in want, already sent) and
// "stream S", and receives until every echo and streamed message is in,
// the session ends or phaseBound passes. It adds what it got to the
// counts and returns whether everything came.
func (r *run) phase(tag string, n, stream int, want ...string) bool {
	return r.phaseWithin(phaseBound, tag, n, stream, want...)
}

// phaseWithin is phase with another bound.
func (r *run) phaseWithin(bound time.Duration, tag string, n, stream int, want ...string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	want = slices.Clone(want) // the caller's, shared by concurrent phases
	for i := 1; i <= n; i++ {
		m := tag + strconv.Itoa(i) + strings.Repeat(".", r.pad)
		r.send(m)
		want = append(want, m)
	}
	if stream > 0 {
		r.send("stream " + strconv.Itoa(stream))
	}
	for i := 1; i <= stream; i++ {
		want = append(want, strconv.Itoa(i))
	}
	var got []string
	for len(got) < len(want) {
		m, err := r.c.Recv(ctx)
		if err != nil {
			r.count(got, want)
			if ctx.Err() == nil {
				r.ended = err
			} else {
				r.hung = fmt.Sprintf("hang: phase %s: %d of %d messages after %v, session not ended, on %q", tag, len(got), len(want), bound, r.c.Transport())
			}
			return false
		}
		if r.first == 0 {
			r.first = time.Since(r.start)
		}
		got = append(got, string(m.Data))
	}
	r.count(got, want)
	return true
}

func (r *run) send(s string) {
	ctx, cancel := context.WithTimeout(context.Background(), phaseBound)
	defer cancel()
	if err := r.c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(s)}); err != nil && ctx.Err() != nil {
		r.t.Errorf("hang: Send(%q) blocked for %v", s, phaseBound)
	}
}

// count adds the lost, duplicated and reordered messages of got to r.
func (r *run) count(got, want []string) {
	seen := map[string]int{}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	var firsts []string
	for _, g := range got {
		if seen[g]++; seen[g] > 1 || !wanted[g] {
			r.dup++
		} else {
			firsts = append(firsts, g)
		}
	}
	var present []string
	for _, w := range want {
		if seen[w] == 0 {
			r.lost++
		} else {
			present = append(present, w)
		}
	}
	r.reordered = r.reordered || !slices.Equal(firsts, present)
}

// exact fails the test unless every phase ended and every message of every
// phase arrived once, in order.
func (r *run) exact() {
	r.t.Helper()
	if r.hung != "" {
		r.t.Error(r.hung)
	}
	if r.ended != nil {
		r.t.Errorf("the session ended: %v", r.ended)
	}
	if r.lost != 0 || r.dup != 0 || r.reordered {
		r.t.Errorf("lost %d, duplicated %d, reordered %v; want none", r.lost, r.dup, r.reordered)
	}
}

// closeAndWait closes the session and waits, bounded, for its end.
func (r *run) closeAndWait() error {
	r.t.Helper()
	r.transport = r.c.Transport()
	err := r.c.Close(wire.StatusNormalClosure, "done")
	select {
	case <-r.c.Done():
	case <-time.After(closeBound):
		r.t.Errorf("hang: the session did not end within %v of Close", closeBound)
	}
	return err
}

// finish checks that the session is on its best transport (waiting up to
// 20 s), closes it and prints its row.
func (r *run) finish() {
	r.t.Helper()
	if !r.waitTransport(r.best, 20*time.Second) {
		r.t.Errorf("%s: Transport() = %q after 20s, want %q", r.label, r.c.Transport(), r.best)
	}
	if err := r.closeAndWait(); err != nil {
		r.t.Errorf("%s: Close: %v", r.label, err)
	}
	r.print(r.label)
}

// waitTransport waits up to d for the session to be on transport name.
func (r *run) waitTransport(name string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if r.c.Transport() == name {
			return true
		}
		select {
		case <-r.c.Done():
			return false
		default:
		}
	}
	return r.c.Transport() == name
}

// failures returns the attempts OnError reported so far.
func (r *run) failures() []client.AttemptError {
	r.failedMu.Lock()
	defer r.failedMu.Unlock()
	return slices.Clone(r.failed)
}

// ms formats d in milliseconds, or "none" for 0: no open, no echo.
func ms(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
}

var reportMu sync.Mutex

// print logs the table line of r and appends it to the report.
func (r *run) print(label string) {
	line := fmt.Sprintf("hostile go %s: transport %s, open %s, first echo %s, resumes %d, failed attempts %d, lost %d, duplicated %d, reordered %v",
		label, cmp.Or(r.transport, "none"), ms(r.open), ms(r.first), r.resumes.Load(), len(r.failures()), r.lost, r.dup, r.reordered)
	if n := r.renewed.Load(); n > 0 {
		line += fmt.Sprintf(", new sessions %d", n)
	}
	if len(r.extra) > 0 {
		line += ", " + strings.Join(r.extra, ", ")
	}
	r.t.Log(line)
	reportMu.Lock()
	defer reportMu.Unlock()
	if f, err := os.OpenFile(report, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

// basic: the first echo, 50 echoes and a stream of 100, on the best
// transport that works through setup.
func basic(t *testing.T, setup, best string) {
	t.Parallel()
	env := start(t, setup)
	r, err := dial(t, env)
	if err != nil {
		t.Fatalf("Dial through %s: %v", setup, err)
	}
	defer r.print(setup)
	_ = r.phase("first", 0, 0, "first") && r.phase("a", 50, 100)
	r.exact()
	if !r.waitTransport(best, 20*time.Second) {
		t.Errorf("Transport() = %q after 20s, want %q", r.c.Transport(), best)
	}
	if best != "websocket" && !slices.ContainsFunc(r.failures(), func(e client.AttemptError) bool { return e.Transport == "websocket" }) {
		t.Errorf("OnError reported %v; want the failed websocket attempt among them", r.failures())
	}
	if err := r.closeAndWait(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestHiccup: nginx refuses WebSocket upgrades (502) at first, so the
// session settles on sse; then nginx lets them through, and a later upgrade
// round (not a cut: the connection goes on) moves the session to WebSocket.
// Messages flow all along, in phases before, across and after the move:
// each arrives once, in order.
func TestHiccup(t *testing.T) {
	t.Parallel()
	env := start(t, "hiccup")
	r, err := dial(t, env)
	if err != nil {
		t.Fatalf("Dial through hiccup: %v", err)
	}
	defer r.print("hiccup")
	ok := r.phase("first", 0, 0, "first") && r.phase("a", 50, 100)
	if !r.waitTransport("sse", 20*time.Second) {
		t.Errorf("Transport() = %q after 20s with WebSocket refused, want sse", r.c.Transport())
	}
	if !slices.ContainsFunc(r.failures(), func(e client.AttemptError) bool {
		return e.Transport == "websocket" && e.Status == http.StatusBadGateway
	}) {
		t.Errorf("OnError reported %v; want the refused websocket attempt (502) among them", r.failures())
	}
	if err := env.PassWebSocket(); err != nil {
		t.Fatal(err)
	}
	passed := time.Now()
	phases := 0
	for ; ok && r.c.Transport() != "websocket" && time.Since(passed) < upgradeBound; phases++ {
		ok = r.phase("b"+strconv.Itoa(phases)+"-", 20, 50)
	}
	r.extra = append(r.extra, fmt.Sprintf("on websocket %s after nginx passed it (%d phases meanwhile)", ms(time.Since(passed)), phases))
	_ = ok && r.phase("c", 50, 100)
	r.exact()
	if got := r.c.Transport(); got != "websocket" {
		t.Errorf("Transport() = %q %v after nginx let WebSocket through, want websocket", got, upgradeBound)
	}
	if err := r.closeAndWait(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestPlain(t *testing.T)     { basic(t, "plain", "websocket") }
func TestNoUpgrade(t *testing.T) { basic(t, "noupgrade", "sse") }
func TestAntivirus(t *testing.T) { basic(t, "antivirus", "longpoll") }
func TestDefaults(t *testing.T)  { basic(t, "defaults", "sse") }

// TestKeepalive: nginx keeps upstream connections and reuses them for the
// requests of other clients; one session per way of connecting, at once,
// so that their requests share connections. Each works exactly and ends on
// its best transport.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	rs := dialModes(t, start(t, "keepalive"))
	each(rs, func(r *run) {
		r.phase("b", 50, 100)
		r.exact()
		r.finish()
	})
}

// TestBufferedRequests: nginx buffers request bodies and answers a body
// over 16 KiB 413 itself. On every transport, bursts of 1 KiB messages
// (sent as bodies over 16 KiB) arrive exactly: the client sends less at a
// time. Then one message over 16 KiB: WebSocket carries it; over a send
// request, which nginx can never pass, the session ends with 1009, after
// OnError reported the request answered 413, within a bound.
func TestBufferedRequests(t *testing.T) {
	t.Parallel()
	env := start(t, "buffered-requests")
	rs := dialModes(t, env)
	defer func() {
		// The access log (README's format): the send bodies nginx refused.
		log, _ := os.ReadFile(env.Nginx.AccessLog)
		refused := strings.Count(string(log), `/rt/send HTTP/1.1" 413 `)
		t.Logf("buffered-requests: nginx answered %d send requests 413", refused)
		if refused == 0 {
			t.Error("nginx refused no send body: the bursts did not test what they should")
		}
	}()
	each(rs, func(r *run) {
		r.pad = 1000
		r.phase("b", 40, 0)
		if !r.waitTransport(r.best, 20*time.Second) {
			t.Errorf("%s: Transport() = %q after 20s, want %q", r.label, r.c.Transport(), r.best)
		}
		big := strings.Repeat("x", hostile.MaxBodyBytes+1)
		r.pad = 0
		if r.best == "websocket" {
			r.send(big)
			if r.phase("c", 0, 0, big) {
				r.extra = append(r.extra, "large message echoed")
			}
			r.exact()
			r.finish()
			return
		}
		r.exact()
		r.transport = r.c.Transport()
		r.send(big)
		ctx, cancel := context.WithTimeout(context.Background(), closeBound)
		defer cancel()
		m, err := r.c.Recv(ctx)
		switch {
		case ctx.Err() != nil:
			t.Errorf("%s: hang: a message nginx refuses neither came back nor ended the session within %v", r.label, closeBound)
		case err == nil:
			t.Errorf("%s: a message nginx refuses came back: %.20q", r.label, m.Data)
		case wire.CloseStatus(err) != wire.StatusMessageTooBig:
			t.Errorf("%s: a message nginx refuses: ended with %v, want %d", r.label, err, wire.StatusMessageTooBig)
		case !slices.ContainsFunc(r.failures(), func(e client.AttemptError) bool { return e.Status == http.StatusRequestEntityTooLarge }):
			t.Errorf("%s: ended with %v, but OnError reported no request answered 413: %v", r.label, err, r.failures())
		default:
			r.extra = append(r.extra, "large message: "+err.Error())
		}
		r.print(r.label)
	})
}

// TestSlowIdle: a buffering nginx (X-Accel-Buffering honoured) whose read
// timeout, 3 s, is below the heartbeat; on every transport, an idle period
// of three timeouts and more, then echoes: exact, on the best transport.
func TestSlowIdle(t *testing.T) {
	t.Parallel()
	rs := dialModes(t, start(t, "slowidle"))
	each(rs, func(r *run) {
		was := r.resumes.Load()
		time.Sleep(4 * hostile.SlowIdleTimeout)
		r.extra = append(r.extra, fmt.Sprintf("idle resumes %d in %v, heartbeat shortened to %v", r.resumes.Load()-was, 4*hostile.SlowIdleTimeout, time.Duration(r.heartbeat.Load())))
		r.phase("b", 20, 50)
		r.exact()
		r.finish()
	})
}

// modes are the ways of connecting that the idle and outage tests run at
// once, one session each: "" is the automatic choice.
var modes = []string{"", "websocket", "sse", "streaming", "longpoll"}

// dialModes dials one session per mode and runs the first echo and phase a
// on each.
func dialModes(t *testing.T, env *hostile.Env) []*run {
	t.Helper()
	var rs []*run
	for _, mode := range modes {
		var ts []string
		if mode != "" {
			ts = []string{mode}
		}
		r, err := dial(t, env, ts...)
		if err != nil {
			t.Fatalf("Dial %s: %v", cmp.Or(mode, "automatic"), err)
		}
		r.label = env.Setup.Name + " " + cmp.Or(mode, "automatic")
		r.best = cmp.Or(mode, "websocket")
		rs = append(rs, r)
	}
	each(rs, func(r *run) { _ = r.phase("first", 0, 0, "first") && r.phase("a", 20, 50) })
	return rs
}

// each runs f on every run at once and waits for them all.
func each(rs []*run, f func(r *run)) {
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() { f(r) })
	}
	wg.Wait()
}

// TestIdle: behind an nginx whose timeouts (5 s) are below the heartbeat
// (25 s), on every transport, idle periods cut the connections; after two
// such cuts the client shortens its heartbeat (PROTOCOL.md 10.4), and a
// second idle period has fewer resumes (none). Nothing is lost.
func TestIdle(t *testing.T) {
	t.Parallel()
	rs := dialModes(t, start(t, "idle"))
	each(rs, func(r *run) {
		// First idle period: until the client has shortened its heartbeat
		// and is back on its transport (bounded).
		was, began := r.resumes.Load(), time.Now()
		for deadline := began.Add(adaptBound); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if r.heartbeat.Load() > 0 && r.c.Transport() == r.best {
				break
			}
		}
		idle1 := time.Since(began)
		before := r.resumes.Load() - was
		time.Sleep(afterIdle)
		after := r.resumes.Load() - was - before
		perMin := func(n int64, d time.Duration) float64 { return float64(n) * float64(time.Minute) / float64(d) }
		r.extra = append(r.extra,
			fmt.Sprintf("heartbeat shortened to %v", time.Duration(r.heartbeat.Load())),
			fmt.Sprintf("idle resumes before adapting %d in %v (%.0f per idle minute)", before, idle1.Round(time.Millisecond), perMin(before, idle1)),
			fmt.Sprintf("after %d in %v (%.0f per idle minute)", after, afterIdle, perMin(after, afterIdle)))
		if r.heartbeat.Load() == 0 {
			t.Errorf("%s: the client never shortened its heartbeat after idle cuts", r.label)
		}
		if after != 0 && after >= before {
			t.Errorf("%s: resumes after adapting %d, before %d; want fewer", r.label, after, before)
		}
		r.phase("b", 20, 50)
		r.exact()
		if err := r.closeAndWait(); err != nil {
			t.Errorf("%s: Close: %v", r.label, err)
		}
		r.print(r.label)
	})
}

// TestOutage: nginx stops for 4 s mid-session, with messages sent before,
// during and after, on every transport; every one arrives exactly once, in
// order, and each session is back on its best transport (WebSocket for the
// automatic choice).
func TestOutage(t *testing.T) {
	t.Parallel()
	env := start(t, "outage")
	rs := dialModes(t, env)
	var during []string
	for i := 1; i <= 20; i++ {
		during = append(during, "b"+strconv.Itoa(i))
	}
	var sending sync.WaitGroup
	for _, r := range rs {
		sending.Go(func() {
			for _, m := range during {
				time.Sleep(hostile.OutageTime / 20)
				r.send(m)
			}
		})
	}
	if err := env.Nginx.Outage(hostile.OutageTime); err != nil {
		t.Fatal(err)
	}
	over := time.Now()
	sending.Wait()
	each(rs, func(r *run) {
		r.phase("c", 20, 50, during...)
		r.exact()
		if r.resumes.Load() == 0 {
			t.Errorf("%s: the outage's cut never reached OnResuming", r.label)
		}
		if len(r.failures()) == 0 {
			t.Errorf("%s: no attempt refused during the outage reached OnError", r.label)
		}
		if r.waitTransport(r.best, 20*time.Second) {
			r.extra = append(r.extra, fmt.Sprintf("on %s %v after the outage", r.best, time.Since(over).Round(time.Millisecond)))
		} else {
			t.Errorf("%s: not back on %s within 20s of the outage's end: an outage is no evidence against a transport", r.label, r.best)
			r.extra = append(r.extra, fmt.Sprintf("not back on %s within 20s", r.best))
		}
		if err := r.closeAndWait(); err != nil {
			t.Errorf("%s: Close: %v", r.label, err)
		}
		r.print(r.label)
	})
}

// TestRoundRobin: round robin over two servers that share nothing, one
// session per way of connecting. nginx alternates between the servers, so
// a session meets the one that does not hold it at the steps of its own
// pattern of requests. The automatic client meets a 404 on a request made
// before its session first attached and falls back to websocket alone
// (PROTOCOL.md 10.6), as does a client forced onto WebSocket whose
// handshake reaches the other server: both work exactly, on websocket. A
// forced HTTP transport fails, as an error from Dial or as the session's
// end with 4005, after OnError reported the request answered 404.
func TestRoundRobin(t *testing.T) {
	t.Parallel()
	env := start(t, "roundrobin")
	for _, mode := range []string{"", "websocket", "sse", "streaming", "longpoll"} {
		var ts []string
		if mode != "" {
			ts = []string{mode}
		}
		name := cmp.Or(mode, "automatic")
		r, err := dial(t, env, ts...)
		if err == nil {
			_ = r.phaseWithin(roundRobinBound, "first", 0, 0, "first") &&
				r.phaseWithin(roundRobinBound, "a", 10, 0) &&
				r.phaseWithin(roundRobinBound, "b", 20, 50)
		}
		switch {
		case err != nil:
			r.extra = append(r.extra, "outcome Dial failed: "+err.Error())
		case r.ended == nil && r.hung == "":
			r.exact()
			r.extra = append(r.extra, "outcome worked")
		case r.hung != "":
			t.Errorf("roundrobin %s: %s", name, r.hung)
			r.extra = append(r.extra, "outcome HANG, "+r.hung)
		default:
			r.extra = append(r.extra, fmt.Sprintf("outcome ended: %v", r.ended))
		}
		if mode == "" || mode == "websocket" {
			// Every message echoed once, in order, over websocket.
			switch {
			case err != nil:
				t.Errorf("roundrobin %s: Dial: %v; want a session on websocket", name, err)
			case r.ended != nil:
				t.Errorf("roundrobin %s: the session ended: %v; want it to work on websocket", name, r.ended)
			case r.c.Transport() != "websocket":
				t.Errorf("roundrobin %s: Transport() = %q, want websocket", name, r.c.Transport())
			}
		}
		// A server without the session is reported as such, not as an
		// expired session.
		if end := cmp.Or(err, r.ended); end != nil && wire.CloseStatus(end) != wire.StatusSessionUnknown {
			t.Errorf("roundrobin %s: ended with %v, want %d (session unknown)", name, end, wire.StatusSessionUnknown)
		}
		// The request answered 404 reached OnError, whether it ended the
		// session or started the fall back.
		if end := cmp.Or(err, r.ended); (end != nil || mode == "") && !slices.ContainsFunc(r.failures(), func(e client.AttemptError) bool { return e.Status == http.StatusNotFound }) {
			t.Errorf("roundrobin %s: OnError reported no request answered 404: %v (end: %v)", name, r.failures(), end)
		}
		if r.c != nil {
			r.closeAndWait()
		}
		r.print("roundrobin " + name)
	}
}
