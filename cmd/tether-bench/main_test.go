package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
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
