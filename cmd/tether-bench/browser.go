package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The browser bench (-browser): the same servers, measured from Debian's
// Chromium, driven by playwright-core as js-client's browser tests are. In
// one page, the systems take turns (drive.mjs): each turn a session that
// makes round trips of 64-byte messages, one at a time, then turns that
// ask for a stream of 64-byte messages. The systems:
// the browser's own WebSocket against the raw gorilla echo (the limit), the
// bundled Tether client on each transport, and sockjs-client (sockjs/test's
// npm package) on each of its transports against sockjs-go (the peer).

// browserSystems are the systems of the browser bench, in report order.
var browserSystems = []string{
	"tether/websocket", "tether/sse", "tether/streaming", "tether/longpoll",
	"raw/websocket",
	"sockjs/websocket", "sockjs/eventsource", "sockjs/xhr-streaming", "sockjs/xhr-polling",
}

// browserPeer names each Tether transport's counterpart in the browser.
var browserPeer = map[string]string{
	"tether/websocket": "sockjs/websocket",
	"tether/sse":       "sockjs/eventsource",
	"tether/streaming": "sockjs/xhr-streaming",
	"tether/longpoll":  "sockjs/xhr-polling",
}

// browserConfig is the scale of a browser run.
type browserConfig struct {
	Systems      []string `json:"systems"`
	EchoN        int      `json:"echoN"`        // round trips measured per WebSocket system, in all
	HTTPEchoN    int      `json:"httpEchoN"`    // round trips measured per HTTP system, in all
	Rounds       int      `json:"rounds"`       // rounds of the echo: a WebSocket system takes a turn in each, EchoN/Rounds round trips
	HTTPEvery    int      `json:"httpEvery"`    // an HTTP system takes its echo turn in every HTTPEvery-th round only
	Warmup       int      `json:"warmup"`       // round trips before those of each turn
	StreamN      int      `json:"streamN"`      // messages of each round's stream
	StreamRounds int      `json:"streamRounds"` // rounds of the stream
	TimeoutMs    int      `json:"timeoutMs"`    // bound on each wait in the page
	URL          string   `json:"url"`
}

func browserFullConfig() browserConfig {
	return browserConfig{Systems: browserSystems, EchoN: 2000, HTTPEchoN: 1000, Rounds: 20, HTTPEvery: 4, Warmup: 20, StreamN: 100000, StreamRounds: 5, TimeoutMs: 30000}
}

// browserQuickConfig is the smoke test's scale: a few hundred messages.
func browserQuickConfig() browserConfig {
	return browserConfig{Systems: browserSystems, EchoN: 200, HTTPEchoN: 200, Rounds: 2, HTTPEvery: 1, Warmup: 10, StreamN: 300, StreamRounds: 2, TimeoutMs: 20000}
}

// browserResult is one system's measurements in the browser.
type browserResult struct {
	Name      string `json:"name"`
	Transport string `json:"transport"` // the transport the client reported using
	Echo      *struct {
		RoundTrips int     `json:"roundTrips"`
		PerSec     float64 `json:"perSec"`
		P50us      float64 `json:"p50us"`
		P99us      float64 `json:"p99us"`
		Wrong      int     `json:"wrong"` // messages that were not the echo awaited
	} `json:"echo"`
	Stream *struct {
		Messages int     `json:"messages"`
		PerSec   float64 `json:"perSec"`
		Wrong    int     `json:"wrong"` // messages that were not the stream's payload
	} `json:"stream"`
	// Refused counts sockjs-go's refusals (close 2010), after each of
	// which the page opened a new session and went on.
	Refused int    `json:"refused"`
	Err     string `json:"err"`
}

// browserRun is everything one browser run measured.
type browserRun struct {
	Command string
	Machine string
	Browser string
	Started time.Time
	Seconds float64
	Config  browserConfig
	Results map[string]browserResult
}

// chromiumPath is the browser the bench drives, as in js-client's tests.
const chromiumPath = "/usr/bin/chromium"

// browserPrereqs finds the repository's root (the driver script, its
// playwright-core and sockjs-client) from the working directory upwards,
// and checks that Chromium and node are installed. The error says what to
// install.
func browserPrereqs() (root string, err error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "cmd/tether-bench/browser/drive.mjs")); err == nil {
			root = dir
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("run from the Tether repository: cmd/tether-bench/browser/drive.mjs not found above the working directory")
		}
		dir = up
	}
	for _, need := range []struct{ path, fix string }{
		{chromiumPath, "install Debian's chromium"},
		{filepath.Join(root, "js-client/node_modules/playwright-core"), "run npm ci in js-client"},
		{filepath.Join(root, "sockjs/test/node_modules/sockjs-client/dist/sockjs.min.js"), "run npm ci in sockjs/test"},
	} {
		if _, err := os.Stat(need.path); err != nil {
			return "", fmt.Errorf("%s not found: %s", need.path, need.fix)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", errors.New("node not found: install Node.js")
	}
	return root, nil
}

// runBrowser starts a bench server and measures cfg.Systems in Chromium.
// Each system's result arrives as the page finishes it; a system that
// failed has Err set. The error is for a run that could not start.
func runBrowser(ctx context.Context, cfg browserConfig, log func(string)) (*browserRun, error) {
	root, err := browserPrereqs()
	if err != nil {
		return nil, err
	}
	run := &browserRun{Machine: machine(), Started: time.Now(), Results: map[string]browserResult{}}
	if out, err := exec.Command(chromiumPath, "--version").Output(); err == nil {
		run.Browser = strings.TrimSpace(string(out))
	}
	os.Setenv(sockjsClientEnv, filepath.Join(root, "sockjs/test/node_modules/sockjs-client/dist/sockjs.min.js"))
	c, err := startChild()
	if err != nil {
		return nil, err
	}
	defer c.stop()
	cfg.URL = c.base() + pagePath
	run.Config = cfg
	arg, _ := json.Marshal(cfg)
	cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "cmd/tether-bench/browser/drive.mjs"), string(arg))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r browserResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			log("driver: " + sc.Text())
			continue
		}
		run.Results[r.Name] = r
		log(r.summary())
	}
	if err := cmd.Wait(); err != nil {
		return run, fmt.Errorf("browser driver: %w", err)
	}
	run.Seconds = time.Since(run.Started).Seconds()
	return run, nil
}

func (r browserResult) summary() string {
	var b strings.Builder
	b.WriteString(r.Name)
	if r.Echo != nil {
		fmt.Fprintf(&b, ": echo %.0f/s p50 %.0f µs p99 %.0f µs", r.Echo.PerSec, r.Echo.P50us, r.Echo.P99us)
	}
	if r.Stream != nil {
		fmt.Fprintf(&b, ", stream %.0f messages/s", r.Stream.PerSec)
	}
	if r.Err != "" {
		b.WriteString(" (" + r.Err + ")")
	}
	return b.String()
}

// Markers around the browser section in the report file: a browser run
// replaces what lies between them (below the notes marker, so that a run of
// the other workloads keeps it too).
const (
	browserBegin = "<!-- browser bench: begin (written by tether-bench -browser) -->"
	browserEnd   = "<!-- browser bench: end -->"
)

// writeBrowser writes the browser section to out (stdout when empty),
// replacing the one there or appending it.
func writeBrowser(run *browserRun, out string) error {
	section := browserBegin + "\n" + renderBrowser(run) + browserEnd + "\n"
	if out == "" {
		fmt.Print(section)
		return nil
	}
	old, err := os.ReadFile(out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(old)
	if i, j := strings.Index(doc, browserBegin), strings.Index(doc, browserEnd); i >= 0 && j > i {
		doc = doc[:i] + section + doc[j+len(browserEnd)+1:]
	} else {
		if !strings.Contains(doc, notesMarker) {
			doc += "\n" + notesMarker + "\n"
		}
		doc += "\n" + section
	}
	return os.WriteFile(out, []byte(doc), 0o644)
}

func renderBrowser(run *browserRun) string {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := run.Config
	w("## In Chromium\n\n")
	w("The same servers (one bench server process), measured from headless Chromium, in one page. ")
	w("Echo: %d round trips of 64-byte text messages per WebSocket system and %d per HTTP one, one at a time, in %d rounds in which the systems take turns ", cfg.EchoN, cfg.HTTPEchoN, cfg.Rounds)
	w("(in order, then in reverse order), so that the load of a shared machine, which drifts over a run, weighs on each alike, ")
	w("after a round that is not measured (the browser, the page's code and the servers warm up in it). ")
	httpTurns := "every round"
	if cfg.HTTPEvery > 1 {
		httpTurns = fmt.Sprintf("every %d%s round", cfg.HTTPEvery, ordinal(cfg.HTTPEvery))
	}
	w("A WebSocket system takes a turn in every round and keeps its session from turn to turn; an HTTP one takes a turn in %s, ", httpTurns)
	w("each turn a session of its own. The first %d round trips of each turn are not measured. ", cfg.Warmup)
	w("Stream, then, in %d rounds taken in turn the same way, each a session in which the server sends %d messages of 64 bytes, ", cfg.StreamRounds, cfg.StreamN)
	w("timed from the request to the last arrival; messages/s is all the rounds' messages over all their time. ")
	w("raw/websocket is the browser's own `WebSocket` against the gorilla echo (the limit); tether/* is the ")
	w("bundled client forced onto one transport; sockjs/* is sockjs-client 1.6.1 forced onto one transport, against ")
	w("sockjs-go; when sockjs-go refuses a poll or stream with close 2010 (its own race, see above), sockjs-client ends the ")
	w("session, and the page counts the refusal and goes on in a new session (the time that takes is included). ")
	w("Ratios are from this run.\n\n")
	w("- Command: `%s`\n", run.Command)
	w("- Machine: %s; %s\n", run.Machine, run.Browser)
	w("- Run: %s, %.0f s\n\n", run.Started.UTC().Format(time.RFC3339), run.Seconds)
	w("| system | echo round trips/s | p50 | p99 | stream messages/s | refused (2010) | echo × raw | stream × raw | echo × sockjs | stream × sockjs |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	raw := run.Results["raw/websocket"]
	for _, name := range cfg.Systems {
		r, ok := run.Results[name]
		if !ok {
			continue
		}
		e, p50, p99, s := "–", "–", "–", "–"
		if r.Echo != nil {
			e, p50, p99 = human(r.Echo.PerSec), fmt.Sprintf("%.0f µs", r.Echo.P50us), fmt.Sprintf("%.0f µs", r.Echo.P99us)
		}
		if r.Stream != nil {
			s = human(r.Stream.PerSec)
		}
		cols := []string{"", "", "", ""}
		if strings.HasPrefix(name, "tether/") {
			peer := run.Results[browserPeer[name]]
			cols = []string{
				ratio(r.echoRate(), raw.echoRate()), ratio(r.streamRate(), raw.streamRate()),
				ratio(r.echoRate(), peer.echoRate()), ratio(r.streamRate(), peer.streamRate()),
			}
		}
		w("| %s | %s | %s | %s | %s | %d | %s |\n", name+orDash(r.Err), e, p50, p99, s, r.Refused, strings.Join(cols, " | "))
	}
	w("\nTargets in this run:\n\n")
	t := run.Results["tether/websocket"]
	w("- tether/websocket at least 0.9× raw/websocket: echo %s, stream %s → %s\n",
		ratio(t.echoRate(), raw.echoRate()), ratio(t.streamRate(), raw.streamRate()),
		mark(t.echoRate() >= 0.9*raw.echoRate() && t.streamRate() >= 0.9*raw.streamRate() && raw.echoRate() > 0 && raw.streamRate() > 0))
	for _, name := range cfg.Systems {
		peer, ok := browserPeer[name]
		if !ok || name == "tether/websocket" {
			continue
		}
		r, p := run.Results[name], run.Results[peer]
		w("- %s ahead of %s: echo %s, stream %s%s → %s\n", name, peer,
			ratio(r.echoRate(), p.echoRate()), ratio(r.streamRate(), p.streamRate()), orDash(p.Err),
			mark(r.echoRate() > p.echoRate() && r.streamRate() > p.streamRate()))
	}
	w("\n")
	return b.String()
}

// ordinal returns the English suffix of n: "st" for 1, "th" for 4.
func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return "th"
	case n%10 == 1:
		return "st"
	case n%10 == 2:
		return "nd"
	case n%10 == 3:
		return "rd"
	}
	return "th"
}

// echoRate is the echo's round trips per second, 0 when it failed.
func (r browserResult) echoRate() float64 {
	if r.Echo == nil {
		return 0
	}
	return r.Echo.PerSec
}

// streamRate is the stream's messages per second, 0 when it failed.
func (r browserResult) streamRate() float64 {
	if r.Stream == nil {
		return 0
	}
	return r.Stream.PerSec
}
