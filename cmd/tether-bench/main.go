// Command tether-bench measures Tether against a raw gorilla/websocket echo
// (the limit) and against igm/sockjs-go/v3 (the peer), in one run, on
// loopback, and writes a Markdown report with ratios and an SVG chart.
//
// Workloads: echo ping-pong, a one-way server-to-client stream, broadcast
// fan-out, idle memory per session, and bytes on the wire per message
// (counted on the client's net.Conn during the echo and the stream), and
// Tether as a cluster of three nodes on Redis and on NATS (echo on a
// session's owner and through another node, fan-out over the nodes; see
// cluster.go), on engines the bench starts. Every server runs in a fresh
// child process (this binary, re-executed with -serve), so that memory and
// goroutines are per server.
//
//	go run ./cmd/tether-bench -out BENCHMARKS.md -chart benchmarks.svg
//	go run ./cmd/tether-bench -quick
//	go run ./cmd/tether-bench -only cluster -buses nats
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// config is the scale of one run.
type config struct {
	EchoClients   int
	EchoTotal     int
	StreamClients int
	StreamTotal   int
	FanoutSizes   []int
	FanoutRounds  int
	IdleSizes     []int
	IdleSettle    time.Duration
	// ClusterBuses are the buses of the cluster workload; its echo runs
	// ClusterEchoTotal round trips over EchoClients sessions, on the owner
	// and again through another node, and its fan-out ClusterFanoutRounds
	// rounds to each of FanoutSizes.
	ClusterBuses        []string
	ClusterEchoTotal    int
	ClusterFanoutRounds int
	StepTimeout         time.Duration
	Only                map[string]bool
}

func fullConfig() config {
	return config{
		EchoClients: 50, EchoTotal: 100_000,
		StreamClients: 4, StreamTotal: 100_000,
		FanoutSizes: []int{1_000, 10_000}, FanoutRounds: 10,
		IdleSizes: []int{2_000, 10_000}, IdleSettle: 2 * time.Second,
		ClusterBuses: clusterBuses, ClusterEchoTotal: 20_000, ClusterFanoutRounds: 5,
		StepTimeout: 60 * time.Second,
	}
}

func quickConfig() config {
	return config{
		EchoClients: 10, EchoTotal: 2_000,
		StreamClients: 2, StreamTotal: 4_000,
		FanoutSizes: []int{200}, FanoutRounds: 3,
		IdleSizes: []int{200}, IdleSettle: 200 * time.Millisecond,
		ClusterBuses: clusterBuses, ClusterEchoTotal: 400, ClusterFanoutRounds: 3,
		StepTimeout: 10 * time.Second,
	}
}

// results is everything one run measured.
type results struct {
	Command string                          `json:"command"`
	Machine string                          `json:"machine"`
	Load    string                          `json:"load"`
	Started time.Time                       `json:"started"`
	Seconds float64                         `json:"seconds"`
	FileMax uint64                          `json:"fileLimit"`
	Config  config                          `json:"config"`
	Echo    map[string]echoResult           `json:"echo"`
	Stream  map[string]streamResult         `json:"stream"`
	Fanout  map[string]map[int]fanoutResult `json:"fanout"`
	Idle    map[string]map[int]idleResult   `json:"idle"`
	Cluster map[string]*clusterResult       `json:"cluster"` // by bus
	Durable *durableResult                  `json:"durable,omitempty"`
}

// wsSystems are the systems of the fan-out and idle workloads.
var wsSystems = []string{"tether/websocket", "gorilla/websocket", "sockjs/websocket"}

// fanoutSystems are the systems of the fan-out: wsSystems, then Tether
// over every transport at once.
var fanoutSystems = append(slices.Clone(wsSystems), mixedFanout.Name)

func main() {
	serve := flag.Bool("serve", false, "run as a bench server (used by the bench itself)")
	quick := flag.Bool("quick", false, "a small run that finishes in under a minute")
	browser := flag.Bool("browser", false, "measure in Chromium instead (echo and stream for the browser's WebSocket, the Tether client and sockjs-client); -out replaces the browser section of the file")
	browserSystemsFlag := flag.String("browser-systems", "", "with -browser: comma-separated systems (default all: "+strings.Join(browserSystems, ",")+")")
	out := flag.String("out", "", "write the Markdown report to this file (default: stdout)")
	chart := flag.String("chart", "", "write the SVG chart to this file")
	jsonOut := flag.String("json", "", "write the raw results as JSON to this file")
	only := flag.String("only", "", "comma-separated workloads to run: echo,stream,fanout,idle,cluster,durable (default all; cluster includes durable)")
	buses := flag.String("buses", "", "cluster: comma-separated buses, each on an engine the bench starts (default "+strings.Join(clusterBuses, ",")+")")
	clusterEchoTotal := flag.Int("cluster-echo-total", 0, "cluster: echo round trips in all, on the owner and again through another node (default 20000; quick 400)")
	systemsFlag := flag.String("systems", "", "comma-separated systems to measure, e.g. tether/websocket,gorilla/websocket; the fan-out also knows tether/mixed (default all; ratios need both sides)")
	echoClients := flag.Int("echo-clients", 0, "echo: concurrent clients (default 50; quick 10)")
	echoTotal := flag.Int("echo-total", 0, "echo: round trips in all (default 100000; quick 2000)")
	streamTotal := flag.Int("stream-total", 0, "stream: messages in all (default 100000; quick 4000)")
	fanout := flag.String("fanout", "", "fan-out session counts, comma-separated (default 1000,10000; quick 200)")
	idle := flag.String("idle", "", "idle session counts, comma-separated (default 2000,10000; quick 200)")
	cpuProfile := flag.String("cpuprofile", "", "write the load generator's CPU profile to this file (TETHER_BENCH_CPUPROFILE=prefix profiles the servers)")
	stepTimeout := flag.Duration("step-timeout", 0, "bound on each measurement (default 60s; quick 10s)")
	flag.Parse()
	if *serve || os.Getenv(serveEnv) != "" {
		if err := runServer(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *browser {
		if err := mainBrowser(*quick, *browserSystemsFlag, *out); err != nil {
			fmt.Fprintln(os.Stderr, "tether-bench:", err)
			os.Exit(1)
		}
		return
	}
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	if *echoClients > 0 {
		cfg.EchoClients = *echoClients
	}
	if *echoTotal > 0 {
		cfg.EchoTotal = *echoTotal
	}
	if *streamTotal > 0 {
		cfg.StreamTotal = *streamTotal
	}
	if *fanout != "" {
		cfg.FanoutSizes = parseInts(*fanout)
	}
	if *idle != "" {
		cfg.IdleSizes = parseInts(*idle)
	}
	if *stepTimeout > 0 {
		cfg.StepTimeout = *stepTimeout
	}
	if *buses != "" {
		cfg.ClusterBuses = nil
		for _, b := range strings.Split(*buses, ",") {
			b = strings.TrimSpace(b)
			if !slices.Contains(clusterBuses, b) {
				fmt.Fprintf(os.Stderr, "tether-bench: unknown bus %q (want %s)\n", b, strings.Join(clusterBuses, ", "))
				os.Exit(2)
			}
			cfg.ClusterBuses = append(cfg.ClusterBuses, b)
		}
	}
	if *clusterEchoTotal > 0 {
		cfg.ClusterEchoTotal = *clusterEchoTotal
	}
	if *only != "" {
		cfg.Only = make(map[string]bool)
		for _, w := range strings.Split(*only, ",") {
			cfg.Only[strings.TrimSpace(w)] = true
		}
	}
	if *systemsFlag != "" {
		keep := map[string]bool{}
		for _, name := range strings.Split(*systemsFlag, ",") {
			if systemByName(strings.TrimSpace(name)) == nil {
				fmt.Fprintf(os.Stderr, "tether-bench: unknown system %q\n", name)
				os.Exit(2)
			}
			keep[strings.TrimSpace(name)] = true
		}
		systems = slices.DeleteFunc(systems, func(s *system) bool { return !keep[s.Name] })
		wsSystems = slices.DeleteFunc(wsSystems, func(name string) bool { return !keep[name] })
		fanoutSystems = slices.DeleteFunc(fanoutSystems, func(name string) bool { return !keep[name] })
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tether-bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	res := run(context.Background(), cfg, newProgress(os.Stderr))
	res.Command = "go run ./cmd/tether-bench " + strings.Join(os.Args[1:], " ")
	if err := writeOutputs(res, *out, *chart, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "tether-bench:", err)
		os.Exit(1)
	}
}

// mainBrowser runs the browser bench and writes its section.
func mainBrowser(quick bool, systemsFlag, out string) error {
	cfg := browserFullConfig()
	if quick {
		cfg = browserQuickConfig()
	}
	if systemsFlag != "" {
		cfg.Systems = nil
		for _, name := range strings.Split(systemsFlag, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(browserSystems, name) {
				return fmt.Errorf("unknown browser system %q", name)
			}
			cfg.Systems = append(cfg.Systems, name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run, err := runBrowser(ctx, cfg, func(s string) { fmt.Fprintln(os.Stderr, s) })
	if err != nil {
		return err
	}
	run.Command = "go run ./cmd/tether-bench " + strings.Join(os.Args[1:], " ")
	return writeBrowser(run, out)
}

func parseInts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func (c config) wants(w string) bool { return c.Only == nil || c.Only[w] }

// step is one measurement of a run, bounded by the config's StepTimeout.
type step struct {
	label string
	fn    func(ctx context.Context)
}

// run measures every workload the config asks for.
func run(ctx context.Context, cfg config, pr *progress) *results {
	res := &results{
		Machine: machine(), Load: loadAverage(), Started: time.Now(), Config: cfg, FileMax: raiseFileLimit(),
		Echo: map[string]echoResult{}, Stream: map[string]streamResult{},
		Fanout: map[string]map[int]fanoutResult{}, Idle: map[string]map[int]idleResult{},
	}
	var steps []step
	if cfg.wants("echo") {
		for _, sys := range systems {
			steps = append(steps, step{"echo " + sys.Name, func(ctx context.Context) {
				res.Echo[sys.Name] = runEcho(ctx, sys, cfg.EchoClients, cfg.EchoTotal)
			}})
		}
	}
	if cfg.wants("stream") {
		for _, sys := range systems {
			steps = append(steps, step{"stream " + sys.Name, func(ctx context.Context) {
				res.Stream[sys.Name] = runStream(ctx, sys, cfg.StreamClients, cfg.StreamTotal)
			}})
		}
	}
	if cfg.wants("fanout") {
		for _, n := range cfg.FanoutSizes {
			for _, name := range fanoutSystems {
				sys := systemByName(name)
				steps = append(steps, step{fmt.Sprintf("fan-out %d %s", n, name), func(ctx context.Context) {
					if res.Fanout[name] == nil {
						res.Fanout[name] = map[int]fanoutResult{}
					}
					res.Fanout[name][n] = runFanout(ctx, sys, n, cfg.FanoutRounds)
				}})
			}
		}
	}
	if cfg.wants("idle") {
		for _, n := range cfg.IdleSizes {
			for _, name := range wsSystems {
				sys := systemByName(name)
				steps = append(steps, step{fmt.Sprintf("idle %d %s", n, name), func(ctx context.Context) {
					if res.Idle[name] == nil {
						res.Idle[name] = map[int]idleResult{}
					}
					res.Idle[name][n] = runIdle(ctx, sys, n, cfg.IdleSettle)
				}})
			}
		}
	}
	if cfg.wants("cluster") || cfg.wants("durable") {
		var engs engines
		defer engs.stop()
		steps = append(steps, clusterSteps(cfg, res, &engs)...)
	}
	for i, st := range steps {
		pr.update(i, len(steps), st.label)
		sctx, cancel := context.WithTimeout(ctx, cfg.StepTimeout)
		st.fn(sctx)
		cancel()
	}
	pr.done(len(steps))
	res.Seconds = time.Since(res.Started).Seconds()
	return res
}

func writeOutputs(res *results, out, chart, jsonOut string) error {
	report := renderReport(res, chart)
	if out == "" {
		fmt.Print(report)
	} else {
		// Keep hand-written notes below the marker across runs: the
		// report, the marker, then the notes.
		report = strings.TrimRight(report, "\n") + "\n\n" + notesMarker + "\n"
		if old, err := os.ReadFile(out); err == nil {
			if _, notes, ok := strings.Cut(string(old), notesMarker); ok {
				report += strings.TrimPrefix(notes, "\n")
			}
		}
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	if chart != "" {
		if err := writeChart(res, chart); err != nil {
			return err
		}
	}
	if jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
