package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/enginetest"
)

// TestMain lets the test binary serve as the bench's child server, as the
// command does when re-executed.
func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		if err := runServer(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuick runs the bench at its -quick scale and checks that every
// system took part in every workload and that the report and chart are
// written. It checks no timings.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	cfg := quickConfig()
	// The step timeout bounds a step, it is not what the test checks: on a
	// loaded machine sockjs-go's polling echo alone can take over the quick
	// scale's 10 s, and a step cut short reports lost messages.
	cfg.StepTimeout = time.Minute
	// The cluster has a test of its own (TestClusterQuick).
	cfg.Only = map[string]bool{"echo": true, "stream": true, "fanout": true, "idle": true}
	res := run(context.Background(), cfg, newProgress(nil))
	for _, sys := range systems {
		e := res.Echo[sys.Name]
		if e.RoundTrips == 0 || e.Lost != 0 {
			t.Errorf("echo %s: %d round trips, %d lost, err %q", sys.Name, e.RoundTrips, e.Lost, e.Err)
		}
		s := res.Stream[sys.Name]
		if s.Messages == 0 || s.Lost != 0 {
			t.Errorf("stream %s: %d messages, %d lost, err %q", sys.Name, s.Messages, s.Lost, s.Err)
		}
		if e.BytesPerMsg <= 0 || s.BytesPerMsg <= 0 {
			t.Errorf("%s: no bytes counted (echo %v, stream %v)", sys.Name, e.BytesPerMsg, s.BytesPerMsg)
		}
	}
	for _, name := range fanoutSystems {
		for _, n := range cfg.FanoutSizes {
			f := res.Fanout[name][n]
			if f.Connected != n || f.Deliveries != n*cfg.FanoutRounds {
				t.Errorf("fan-out %s: %d of %d connected, %d deliveries, err %q", name, f.Connected, n, f.Deliveries, f.Err)
			}
		}
	}
	for _, name := range wsSystems {
		for _, n := range cfg.IdleSizes {
			r := res.Idle[name][n]
			if r.Connected != n || r.GoroutinesPerSess <= 0 {
				t.Errorf("idle %s: %d of %d connected, %.2f goroutines per session, err %q", name, r.Connected, n, r.GoroutinesPerSess, r.Err)
			}
		}
	}
	dir := t.TempDir()
	out, chart := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "chart.svg")
	if err := writeOutputs(res, out, chart, ""); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## 1. Echo", "## 2. One-way", "## 3. Broadcast", "## 4. Idle", "## 5. Bytes", "## Targets", notesMarker} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	checkChart(t, chart)
}

// TestClusterQuick runs the cluster workload at its -quick scale on every
// bus, each on a real engine, and checks that every transport echoed every
// round trip on the owner and through another node, that the fan-out
// reached every session of the three nodes, and that the report has the
// section and its summary lines. It checks no timings.
func TestClusterQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes and bus engines")
	}
	enginetest.RequireRedis(t)
	enginetest.RequireNATS(t)
	cfg := quickConfig()
	cfg.StepTimeout = time.Minute
	cfg.Only = map[string]bool{"cluster": true}
	res := run(context.Background(), cfg, newProgress(nil))
	for _, bus := range cfg.ClusterBuses {
		cr := res.Cluster[bus]
		if cr == nil || cr.Err != "" {
			t.Errorf("cluster %s: %+v", bus, cr)
			continue
		}
		for _, tr := range clusterTransports {
			for way, e := range map[string]echoResult{"owner": cr.Echo[tr].Owner, "relayed": cr.Echo[tr].Relayed} {
				if want := cfg.ClusterEchoTotal / cfg.EchoClients * cfg.EchoClients; e.RoundTrips != want || e.Lost != 0 || e.Err != "" {
					t.Errorf("cluster %s echo %s %s: %d of %d round trips, %d lost, err %q", bus, tr, way, e.RoundTrips, want, e.Lost, e.Err)
				}
			}
		}
		for _, n := range cfg.FanoutSizes {
			f := cr.Fanout[n]
			if f.Connected != n || f.Deliveries != n*cfg.ClusterFanoutRounds || f.Err != "" {
				t.Errorf("cluster %s fan-out %d: %d connected, %d deliveries, err %q", bus, n, f.Connected, f.Deliveries, f.Err)
			}
		}
	}
	checkDurable(t, cfg, res.Durable)
	dir := t.TempDir()
	out, chart := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "chart.svg")
	if err := writeOutputs(res, out, chart, ""); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## 6. Cluster", "Cluster over redis, echo through another node", "Cluster over nats, fan-out to",
		"Durable mode's cost", "Durable mode over redis, echo on the owner", "Durable mode over redis, fan-out to"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	svg, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"6. Cluster of 3 nodes, echo", "nats longpoll relayed", "redis " + strconv.Itoa(cfg.FanoutSizes[0]) + " sessions"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("chart lacks %q", want)
		}
	}
}

// checkChart checks that the chart is well-formed SVG naming every system.
func checkChart(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("chart: %v", err)
	}
	var text strings.Builder
	dec := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	if root != "svg" {
		t.Errorf("chart's root element is %q, want svg", root)
	}
	for _, sys := range systems {
		if !strings.Contains(text.String(), sys.Name) {
			t.Errorf("chart does not name %s", sys.Name)
		}
	}
}

// browserEnv, set to 1, runs TestBrowserSmoke: scripts/test.sh does, after
// the npm packages the browser bench uses are installed.
const browserEnv = "TETHER_BENCH_BROWSER"

// TestBrowserSmoke runs the browser bench at a few hundred messages per
// system and checks that every system answered every round trip and
// delivered the whole stream, exactly, over the transport asked for, and
// that the report section is written and replaced in place. It checks no
// timings.
func TestBrowserSmoke(t *testing.T) {
	if os.Getenv(browserEnv) != "1" {
		t.Skip("SKIPPED: the browser bench's smoke test runs in scripts/test.sh's browser step (" + browserEnv + "=1), after npm ci")
	}
	cfg := browserQuickConfig()
	run, err := runBrowser(context.Background(), cfg, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range browserSystems {
		r, ok := run.Results[name]
		if !ok {
			t.Errorf("%s: no result", name)
			continue
		}
		if r.Err != "" {
			t.Errorf("%s: %s", name, r.Err)
		}
		if want := name[strings.Index(name, "/")+1:]; r.Transport != want {
			t.Errorf("%s: ran on %q", name, r.Transport)
		}
		wantEcho := cfg.EchoN
		if !strings.HasSuffix(name, "/websocket") {
			wantEcho = cfg.HTTPEchoN
		}
		if r.Echo == nil || r.Echo.RoundTrips != wantEcho || r.Echo.Wrong != 0 || !(r.Echo.PerSec > 0) || r.Echo.P50us > r.Echo.P99us {
			t.Errorf("%s: echo %+v, want %d round trips, none wrong", name, r.Echo, wantEcho)
		}
		if r.Stream == nil || r.Stream.Messages != cfg.StreamRounds*cfg.StreamN || r.Stream.Wrong != 0 || !(r.Stream.PerSec > 0) {
			t.Errorf("%s: stream %+v, want %d messages, none wrong", name, r.Stream, cfg.StreamRounds*cfg.StreamN)
		}
	}
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(out, []byte("# Benchmarks\n\n"+notesMarker+"\nnotes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second run replaces the section
		if err := writeBrowser(run, out); err != nil {
			t.Fatal(err)
		}
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(md), browserBegin); n != 1 || strings.Count(string(md), browserEnd) != 1 {
		t.Errorf("report holds %d browser sections, want 1", n)
	}
	for _, want := range append([]string{"## In Chromium", "notes\n", "Targets in this run"}, browserSystems...) {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestNotesKeptAcrossRuns: a run rewrites the report above the notes marker
// and keeps, once and below it, what was written there by hand.
func TestNotesKeptAcrossRuns(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	res := &results{Command: "first"}
	if err := writeOutputs(res, out, "", ""); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(out)
	const notes = "## Method\n\nwritten by hand\n"
	if err := os.WriteFile(out, append(md, notes...), 0o644); err != nil {
		t.Fatal(err)
	}
	res.Command = "second"
	for range 2 {
		if err := writeOutputs(res, out, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	md, _ = os.ReadFile(out)
	report, kept, ok := strings.Cut(string(md), notesMarker)
	if !ok || strings.Count(string(md), notesMarker) != 1 {
		t.Fatalf("want the marker once:\n%s", md)
	}
	if !strings.Contains(report, "second") || strings.Contains(report, "first") || strings.Contains(report, "written by hand") {
		t.Errorf("the report above the marker is not the last run's alone:\n%s", report)
	}
	if strings.Count(kept, "written by hand") != 1 {
		t.Errorf("the notes below the marker = %q, want them once", kept)
	}
}

// checkDurable checks durable mode's runs of the cluster workload: every
// round trip and delivery made, plain and durable, and the durable ones
// counted on the state Redis (commands and bytes for every run).
func checkDurable(t *testing.T, cfg config, dr *durableResult) {
	t.Helper()
	if dr == nil || dr.Err != "" {
		t.Errorf("durable: %+v", dr)
		return
	}
	for _, tr := range clusterTransports {
		e := dr.Echo[tr]
		for way, r := range map[string]echoResult{"off": e.Off, "on": e.On} {
			if want := cfg.ClusterEchoTotal / cfg.EchoClients * cfg.EchoClients; r.RoundTrips != want || r.Lost != 0 || r.Err != "" {
				t.Errorf("durable echo %s %s: %d of %d round trips, %d lost, err %q", tr, way, r.RoundTrips, want, r.Lost, r.Err)
			}
		}
		if s := e.State; s.Err != "" || s.Messages != 2*e.On.RoundTrips || s.calls() == 0 || s.BytesIn == 0 || s.BytesOut == 0 {
			t.Errorf("durable echo %s: state Redis %+v, want its commands and bytes over %d messages", tr, s, 2*e.On.RoundTrips)
		}
	}
	for _, n := range cfg.FanoutSizes {
		f := dr.Fanout[n]
		for way, r := range map[string]fanoutResult{"off": f.Off, "on": f.On} {
			if r.Connected != n || r.Deliveries != n*cfg.ClusterFanoutRounds || r.Err != "" {
				t.Errorf("durable fan-out %d %s: %d connected, %d deliveries, err %q", n, way, r.Connected, r.Deliveries, r.Err)
			}
		}
		if s := f.State; s.Err != "" || s.Messages != f.On.Deliveries || s.calls() == 0 {
			t.Errorf("durable fan-out %d: state Redis %+v, want its commands over %d messages", n, s, f.On.Deliveries)
		}
	}
}
