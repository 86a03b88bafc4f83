package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	for _, name := range wsSystems {
		for _, n := range cfg.FanoutSizes {
			f := res.Fanout[name][n]
			if f.Connected != n || f.Deliveries != n*cfg.FanoutRounds {
				t.Errorf("fan-out %s: %d of %d connected, %d deliveries, err %q", name, f.Connected, n, f.Deliveries, f.Err)
			}
		}
		for _, n := range cfg.IdleSizes {
			r := res.Idle[name][n]
			if r.Connected != n || r.GoroutinesPerSess <= 0 {
				t.Errorf("idle %s: %d of %d connected, %.2f goroutines per session, err %q", name, r.Connected, n, r.GoroutinesPerSess, r.Err)
			}
		}
	}
	dir := t.TempDir()
	out, chart := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "chart.png")
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
	if fi, err := os.Stat(chart); err != nil || fi.Size() == 0 {
		t.Errorf("chart: %v", err)
	}
}
