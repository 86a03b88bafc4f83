package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// notesMarker separates the generated report from hand-written notes, which
// a new run keeps.
const notesMarker = "<!-- notes: everything below this line is kept across runs -->"

// machine describes the host: CPU, cores, memory, kernel, Go.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		var kb int64
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "MemTotal:")), "%d", &kb)
		mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
	}
	kernel := ""
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		kernel = ", " + strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d)%s%s, %s %s/%s",
		cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), mem, kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// loadAverage returns the 1-, 5- and 15-minute load averages of the host,
// from /proc/loadavg, or "" where there are none: on a shared machine, what
// else ran beside the bench.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}

// ratio formats a/b as "1.23×", or "–" when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func human(n float64) string {
	switch {
	case n >= 10_000:
		return fmt.Sprintf("%.0f", n)
	case n >= 100:
		return fmt.Sprintf("%.0f", n)
	}
	return fmt.Sprintf("%.1f", n)
}

func kib(n float64) string { return fmt.Sprintf("%.1f KiB", n/1024) }

func orDash(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func renderReport(res *results, chart string) string {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Benchmarks\n\n")
	w("Tether against a raw gorilla/websocket echo (the limit) and igm/sockjs-go/v3 (the peer), ")
	w("measured in one run of `cmd/tether-bench` on loopback. Each measurement runs against a fresh ")
	w("server process (the bench re-executed with `-serve`); the clients are the Tether Go client, ")
	w("gorilla/websocket, and the bench's own SockJS client. Ratios are Tether / the other, from the same run.\n\n")
	w("- Command: `%s`\n", res.Command)
	w("- Machine: %s\n", res.Machine)
	w("- Run: %s, %.0f s; file-descriptor limit %d\n", res.Started.UTC().Format(time.RFC3339), res.Seconds, res.FileMax)
	if res.Load != "" {
		w("- Load average when the run started (1, 5, 15 min): %s, on %d cores\n", res.Load, runtime.NumCPU())
	}
	w("\n")
	if chart != "" {
		w("![chart](%s)\n\n", filepath.Base(chart))
	}
	cfg := res.Config
	if len(res.Echo) > 0 {
		w("## 1. Echo ping-pong\n\n%d clients, 64-byte text messages, %d round trips in all; each client waits for its echo before sending the next.\n\n",
			cfg.EchoClients, cfg.EchoTotal)
		w("| system | round trips/s | p50 | p99 | lost | refused (2010) | × gorilla | × sockjs counterpart |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, sys := range systems {
			r, ok := res.Echo[sys.Name]
			if !ok {
				continue
			}
			g, p := "", ""
			if sys.Family == "tether" {
				g = ratio(r.PerSec, res.Echo["gorilla/websocket"].PerSec)
				p = ratio(r.PerSec, res.Echo[sys.Peer].PerSec)
			}
			w("| %s | %s | %.0f µs | %.0f µs | %d | %d | %s | %s |\n", sys.Name+orDash(r.Err), human(r.PerSec), r.P50us, r.P99us, r.Lost, r.Refused, g, p)
		}
		w("\nCPU time per round trip, server process plus load generator (`/proc` and `getrusage`), steadier than throughput on a shared machine; lower is better, and a ratio below 1 means Tether uses less:\n\n")
		w("| system | server CPU/round trip | client CPU/round trip | total | total × gorilla | total × sockjs counterpart |\n|---|---:|---:|---:|---:|---:|\n")
		cpu := func(r echoResult) float64 { return r.ServerCPUus + r.ClientCPUus }
		for _, sys := range systems {
			r, ok := res.Echo[sys.Name]
			if !ok || cpu(r) == 0 {
				continue
			}
			g, p := "", ""
			if sys.Family == "tether" {
				g = ratio(cpu(r), cpu(res.Echo["gorilla/websocket"]))
				p = ratio(cpu(r), cpu(res.Echo[sys.Peer]))
			}
			w("| %s | %.1f µs | %.1f µs | %.1f µs | %s | %s |\n", sys.Name, r.ServerCPUus, r.ClientCPUus, cpu(r), g, p)
		}
		w("\n")
	}
	if len(res.Stream) > 0 {
		w("## 2. One-way stream, server to client\n\n%d clients each ask for %d messages of 64 bytes; messages per second until the last arrives.\n\n",
			cfg.StreamClients, cfg.StreamTotal/max(1, cfg.StreamClients))
		w("| system | messages/s | lost | refused (2010) | × gorilla | × sockjs counterpart |\n|---|---:|---:|---:|---:|---:|\n")
		for _, sys := range systems {
			r, ok := res.Stream[sys.Name]
			if !ok {
				continue
			}
			g, p := "", ""
			if sys.Family == "tether" {
				g = ratio(r.PerSec, res.Stream["gorilla/websocket"].PerSec)
				p = ratio(r.PerSec, res.Stream[sys.Peer].PerSec)
			}
			w("| %s | %s | %d | %d | %s | %s |\n", sys.Name+orDash(r.Err), human(r.PerSec), r.Lost, r.Refused, g, p)
		}
		w("\n")
	}
	if len(res.Fanout) > 0 {
		renderFanout(w, res)
	}
	if len(res.Idle) > 0 {
		w("## 4. Idle memory (WebSocket)\n\nA fresh server process; the difference in its RSS, live heap (after GC), goroutine stacks and goroutines before and after the sessions connect and go idle, per session.\n\n")
		w("| system | sessions | connected | RSS/session | heap/session | stacks/session | goroutines/session | RSS × sockjs | heap × sockjs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, n := range cfg.IdleSizes {
			for _, name := range wsSystems {
				r, ok := res.Idle[name][n]
				if !ok {
					continue
				}
				p, h := "", ""
				if name == "tether/websocket" {
					p = ratio(r.RSSPerSession, res.Idle["sockjs/websocket"][n].RSSPerSession)
					h = ratio(r.HeapPerSession, res.Idle["sockjs/websocket"][n].HeapPerSession)
				}
				w("| %s | %d | %d | %s | %s | %s | %.2f | %s | %s |\n", name+orDash(r.Err), n, r.Connected,
					kib(r.RSSPerSession), kib(r.HeapPerSession), kib(r.StackPerSession), r.GoroutinesPerSess, p, h)
			}
		}
		w("\n")
	}
	if len(res.Echo) > 0 || len(res.Stream) > 0 {
		w("## 5. Bytes on the wire per message\n\nCounted on the client's net.Conn (both directions, HTTP and WebSocket framing included, TCP/IP headers not): the echo's bytes divided by twice its round trips, and the stream's bytes divided by its messages (64-byte payloads).\n\n")
		w("| system | echo bytes/message | stream bytes/message | echo × sockjs | stream × sockjs |\n|---|---:|---:|---:|---:|\n")
		for _, sys := range systems {
			e, s := res.Echo[sys.Name], res.Stream[sys.Name]
			p1, p2 := "", ""
			if sys.Family == "tether" {
				p1 = ratio(e.BytesPerMsg, res.Echo[sys.Peer].BytesPerMsg)
				p2 = ratio(s.BytesPerMsg, res.Stream[sys.Peer].BytesPerMsg)
			}
			w("| %s | %.1f | %.1f | %s | %s |\n", sys.Name, e.BytesPerMsg, s.BytesPerMsg, p1, p2)
		}
		w("\n")
	}
	if len(res.Cluster) > 0 || res.Durable != nil {
		renderCluster(w, res)
	}
	renderTargets(&b, res)
	return b.String()
}

// renderFanout writes section 3, the broadcast fan-out.
func renderFanout(w func(format string, args ...any), res *results) {
	cfg := res.Config
	w("## 3. Broadcast fan-out\n\nThe server sends one 64-byte message to every session, %d rounds: %s. ", cfg.FanoutRounds, tetherBroadcast)
	w("gorilla/websocket and sockjs-go send it in a loop over their connections, in the order they connected (as the brokers deliver in the order sessions subscribed). Latency from the start of the server's send to the arrival at each client (same clock); deliveries/s over the rounds, from the broadcast order to the last arrival. ")
	w("tether/websocket has WebSocket sessions only; tether/mixed spreads its sessions over %s in turn, subscribed to the same topic.\n\n", strings.Join(mixedTransports, ", "))
	w("| system | sessions | connected | p50 | p99 | deliveries/s | lost | p99 × gorilla | p99 × sockjs | deliveries/s × gorilla |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range cfg.FanoutSizes {
		for _, name := range fanoutSystems {
			r, ok := res.Fanout[name][n]
			if !ok {
				continue
			}
			g, p, d := "", "", ""
			if systemByName(name).Family == "tether" {
				g = ratio(r.P99ms, res.Fanout["gorilla/websocket"][n].P99ms)
				p = ratio(r.P99ms, res.Fanout["sockjs/websocket"][n].P99ms)
				d = ratio(r.PerSec, res.Fanout["gorilla/websocket"][n].PerSec)
			}
			w("| %s | %d | %d | %.1f ms | %.1f ms | %s | %d | %s | %s | %s |\n", name+orDash(r.Err), n, r.Connected, r.P50ms, r.P99ms, human(r.PerSec), r.Lost, g, p, d)
		}
	}
	w("\nCPU time per delivery, server process plus load generator, from the first round until %.1f s after the last (a Tether client acknowledges the end of a burst once 1 s passes without a message, and those acknowledgements are counted); lower is better:\n\n", ackSettle.Seconds())
	w("| system | sessions | server CPU/delivery | client CPU/delivery | total | total × gorilla |\n|---|---:|---:|---:|---:|---:|\n")
	cpu := func(r fanoutResult) float64 { return r.ServerCPUus + r.ClientCPUus }
	for _, n := range cfg.FanoutSizes {
		for _, name := range fanoutSystems {
			r, ok := res.Fanout[name][n]
			if !ok || cpu(r) == 0 {
				continue
			}
			g := ""
			if systemByName(name).Family == "tether" {
				g = ratio(cpu(r), cpu(res.Fanout["gorilla/websocket"][n]))
			}
			w("| %s | %d | %.1f µs | %.1f µs | %.1f µs | %s |\n", name, n, r.ServerCPUus, r.ClientCPUus, cpu(r), g)
		}
	}
	w("\n")
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// renderTargets checks the targets against this run.
func renderTargets(b io.Writer, res *results) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Targets (checked against this run)\n\n")
	if len(res.Echo) > 0 {
		t, g := res.Echo["tether/websocket"].PerSec, res.Echo["gorilla/websocket"].PerSec
		w("- WebSocket echo at least 0.9× raw gorilla: %s → %s\n", ratio(t, g), mark(g > 0 && t >= 0.9*g))
		for _, sys := range systems {
			if sys.Family != "tether" || sys.Transport == "websocket" {
				continue
			}
			r, p := res.Echo[sys.Name], res.Echo[sys.Peer]
			clean := r.Lost == 0 && r.Refused == 0 && r.Err == ""
			w("- %s echo at least 1.5× %s, none refused or lost: %s, %d lost, %d refused (sockjs-go: %d lost, %d refused with 2010) → %s\n",
				sys.Name, sys.Peer, ratio(r.PerSec, p.PerSec), r.Lost, r.Refused, p.Lost, p.Refused, mark(p.PerSec > 0 && r.PerSec >= 1.5*p.PerSec && clean))
		}
	}
	if len(res.Idle) > 0 {
		ns := slices.Sorted(func(yield func(int) bool) {
			for n := range res.Idle["tether/websocket"] {
				if !yield(n) {
					return
				}
			}
		})
		for _, n := range ns {
			t, s := res.Idle["tether/websocket"][n], res.Idle["sockjs/websocket"][n]
			w("- Idle memory per WebSocket session at most half of sockjs-go's (%d sessions): RSS %s, heap %s → %s\n",
				n, ratio(t.RSSPerSession, s.RSSPerSession), ratio(t.HeapPerSession, s.HeapPerSession),
				mark(s.RSSPerSession > 0 && t.RSSPerSession <= 0.5*s.RSSPerSession))
			w("- At most one goroutine per idle session (%d sessions): %.2f → %s\n", n, t.GoroutinesPerSess, mark(t.GoroutinesPerSess <= 1.0001))
		}
	}
	if len(res.Echo) > 0 || len(res.Stream) > 0 {
		for _, sys := range systems {
			if sys.Family != "tether" {
				continue
			}
			e, pe := res.Echo[sys.Name].BytesPerMsg, res.Echo[sys.Peer].BytesPerMsg
			s, ps := res.Stream[sys.Name].BytesPerMsg, res.Stream[sys.Peer].BytesPerMsg
			ok := (e == 0 || e < pe) && (s == 0 || s < ps)
			w("- Fewer bytes per message than %s: echo %.1f vs %.1f, stream %.1f vs %.1f → %s\n", sys.Peer, e, pe, s, ps, mark(ok))
		}
	}
	if fo, ok := res.Fanout["tether/websocket"][10_000]; ok {
		g := res.Fanout["gorilla/websocket"][10_000]
		full := fo.Connected == 10_000 && fo.Lost == 0
		w("- 10,000-session WebSocket fan-out p99 at most raw gorilla's: %.1f ms vs %.1f ms, %s → %s\n", fo.P99ms, g.P99ms, ratio(fo.P99ms, g.P99ms), mark(full && g.P99ms > 0 && fo.P99ms <= g.P99ms))
		w("- 10,000-session WebSocket fan-out deliveries/s at least raw gorilla's: %s vs %s, %s → %s\n", human(fo.PerSec), human(g.PerSec), ratio(fo.PerSec, g.PerSec), mark(full && fo.PerSec >= g.PerSec))
		w("- 10,000-session fan-out p99 under 100 ms (stretch): %.1f ms (%d of 10,000 connected) → %s\n", fo.P99ms, fo.Connected, mark(full && fo.P99ms < 100))
	}
	renderClusterTargets(w, res)
	w("- At most one allocation per message on the send path: see the microbenchmarks below (`go test -bench`).\n\n")
}
