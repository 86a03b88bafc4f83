package clustertest_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/internal/nginxtest"
)

// report is where the tests write their table, printed by scripts/test.sh
// after the Go tests (go test shows nothing of a passing package).
const report = "../../test-output/cluster-go.txt"

// bin is examples/cluster, built by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clustertest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "cluster")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tetherkit/tether/examples/cluster").CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build examples/cluster: %v\n%s", err, out)
		os.Exit(1)
	}
	os.MkdirAll(filepath.Dir(report), 0o755)
	os.Remove(report)
	began := time.Now()
	code := m.Run()
	writeReport(time.Since(began))
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// buses are the engines every test runs on: redis and nats, or those
// CLUSTER_BUSES lists (comma-separated) for a shorter run.
var buses = strings.Split(cmp.Or(os.Getenv("CLUSTER_BUSES"), "redis,nats"), ",")

// transports are forced one per session.
var transports = []string{"websocket", "sse", "streaming", "longpoll"}

// env is a cluster running: the engine, three nodes and nginx in front.
type env struct {
	t      *testing.T
	bus    string
	engine *enginetest.Engine
	nodes  []*clustertest.NodeProcess
	nginx  *nginxtest.Nginx
	url    string // the echo service through nginx

	// state is the Redis that keeps the sessions' state, in durable mode;
	// nil otherwise.
	state *enginetest.Engine
	args  []string    // added to every node's flags
	logs  *syncBuffer // the nodes' logs
}

// nodeCount is how many nodes a cluster has.
const nodeCount = 3

// syncBuffer is a bytes.Buffer for several writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCluster runs three nodes on a new engine of bus, behind nginx with
// README's configuration doing round robin over them. The nodes' logs are
// shown when the test fails.
func startCluster(t *testing.T, bus string) *env { return start(t, bus, false) }

// startDurableCluster is startCluster with the nodes in durable mode: the
// sessions' state in Redis (the bus's, or one of its own on NATS), leases
// of durableLeaseTTL.
func startDurableCluster(t *testing.T, bus string) *env { return start(t, bus, true) }

func start(t *testing.T, bus string, durable bool) *env {
	t.Helper()
	nginxtest.Require(t)
	e := &env{t: t, bus: bus, logs: new(syncBuffer)}
	switch bus {
	case "redis":
		e.engine = enginetest.RedisT(t)
		e.state = e.engine
	case "nats":
		e.engine = enginetest.NATST(t)
		if durable {
			e.state = enginetest.RedisT(t)
		}
	default:
		t.Fatalf("no bus %q", bus)
	}
	if durable {
		e.args = durableArgs(e.state.URL())
	} else {
		e.state = nil
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the nodes' logs:\n%s", e.logs)
		}
	})
	var backends []string
	for i := 1; i <= nodeCount; i++ {
		n, err := clustertest.StartNodeProcess(bin, e.engine.URL(), "n"+strconv.Itoa(i), e.logs, e.args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Stop)
		e.nodes = append(e.nodes, n)
		backends = append(backends, n.Addr)
	}
	conf, err := nginxtest.ReadmeConfig("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	e.nginx = nginxtest.StartT(t, conf, backends...)
	e.url = "http://" + e.nginx.Addr + "/rt/"
	return e
}

// row is one line of the report.
type row struct {
	bus, transport, scenario string
	sent, received           int
	lost, duplicated         int
	reordered                int
	closes                   string // close codes the client saw, "" for none
	resumes, failed          int64  // the client's resumes and failed attempts
	took                     time.Duration
}

var (
	rowsMu sync.Mutex
	rows   []row // guarded by rowsMu
)

// record adds r to the report, and logs it.
func record(t *testing.T, r row) {
	t.Logf("%s %s %s: sent %d, received %d, lost %d, duplicated %d, reordered %d, closes %s, resumes %d, failed attempts %d, %v",
		r.bus, r.transport, r.scenario, r.sent, r.received, r.lost, r.duplicated, r.reordered, cmp.Or(r.closes, "none"), r.resumes, r.failed, r.took.Round(time.Millisecond))
	rowsMu.Lock()
	defer rowsMu.Unlock()
	rows = append(rows, r)
}

// writeReport writes the table of every row, sorted, to report.
func writeReport(took time.Duration) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 && len(durableRows) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.bus, b.bus), cmp.Compare(a.scenario, b.scenario), cmp.Compare(a.transport, b.transport))
	})
	var b strings.Builder
	fmt.Fprintf(&b, "Go client, 3 Tether nodes behind nginx round robin (internal/clustertest, %v in all)\n", took.Round(time.Second))
	if len(rows) > 0 {
		fmt.Fprintf(&b, "%-6s %-10s %-22s %9s %9s %6s %6s %9s  %-14s %7s %7s %8s\n", "bus", "transport", "scenario", "sent", "received", "lost", "dup", "reordered", "closes", "resumes", "failed", "time")
		for _, r := range rows {
			fmt.Fprintf(&b, "%-6s %-10s %-22s %9d %9d %6d %6d %9d  %-14s %7d %7d %7.1fs\n", r.bus, r.transport, r.scenario, r.sent, r.received, r.lost, r.duplicated, r.reordered, cmp.Or(r.closes, "none"), r.resumes, r.failed, r.took.Seconds())
		}
		b.WriteString("sent/received: messages (echoes, or publishes times subscribers); lost, dup, reordered: of those; closes: codes the client saw (OnReconnecting, or the session's end); resumes: connections lost and resumed; failed: attempts that failed (OnError); time: the scenario's\n")
		b.WriteString("node killed, its own: what is lost was sent before the close 4006 and the new session (the test fails on any message lost after it)\n")
	}
	b.WriteString(durableReport())
	os.WriteFile(report, []byte(b.String()), 0o644)
}
