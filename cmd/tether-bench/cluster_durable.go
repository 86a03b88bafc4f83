package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Durable mode's cost: the cluster's echo on the owner and its fan-out,
// each run twice in one step on fresh clusters of the same bus, once with
// plain nodes and once with durable nodes (cluster.NodeOptions.State on a
// Redis of their own, the state Redis, which the bench starts apart from
// the bus's engine so that what it counts is the state's alone). The
// state Redis's INFO commandstats and network counters, read before and
// after the measured window, give the Redis commands and bytes per
// message.

// stateEnv is the environment of a durable node: the state Redis's URL.
const stateEnv = "TETHER_BENCH_STATE"

// stateEngine is the engines key of the state Redis.
const stateEngine = "state"

// durableResult is durable mode's cost on one bus.
type durableResult struct {
	Bus    string                       `json:"bus"`
	Engine string                       `json:"engine"` // the bus's engine's version line
	Echo   map[string]durableEchoResult `json:"echo"`   // by transport
	Fanout map[int]durableFanoutResult  `json:"fanout"` // by sessions
	Err    string                       `json:"err,omitempty"`
}

// durableEchoResult is the echo on the owner of one transport, plain and
// durable.
type durableEchoResult struct {
	Off   echoResult `json:"off"`
	On    echoResult `json:"on"`
	State stateCost  `json:"state"` // of On; messages: 2 per round trip
}

// durableFanoutResult is the fan-out over the nodes, plain and durable.
type durableFanoutResult struct {
	Off   fanoutResult `json:"off"`
	On    fanoutResult `json:"on"`
	State stateCost    `json:"state"` // of On; messages: the deliveries
}

// stateCost is what the state Redis did during a measured window: the
// calls of each command (those that scripts make counted too, as Redis
// counts them; the bench's own INFO left out) and the bytes it read and
// wrote on the network, over the messages the window carried.
type stateCost struct {
	Messages int              `json:"messages"`
	Calls    map[string]int64 `json:"calls"`
	BytesIn  int64            `json:"bytesIn"`
	BytesOut int64            `json:"bytesOut"`
	Err      string           `json:"err,omitempty"`
}

// calls returns the calls of every command in all.
func (c stateCost) calls() int64 {
	var n int64
	for _, k := range c.Calls {
		n += k
	}
	return n
}

// per returns n per message.
func (c stateCost) per(n int64) float64 {
	if c.Messages == 0 {
		return 0
	}
	return float64(n) / float64(c.Messages)
}

// breakdown returns the commands per message, the most called first, as
// "evalsha 1.00, xadd 0.50".
func (c stateCost) breakdown() string {
	names := slices.Collect(maps.Keys(c.Calls))
	slices.SortFunc(names, func(a, b string) int {
		if d := c.Calls[b] - c.Calls[a]; d != 0 {
			return int(min(max(d, -1), 1))
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, name := range names {
		if p := c.per(c.Calls[name]); p >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", name, p))
		}
	}
	return strings.Join(parts, ", ")
}

// stateMeter reads the state Redis's counters around a measured window
// (fleet.meter): begin, then end, which leaves the difference in cost.
type stateMeter struct {
	client *redis.Client
	before redisCounters
	cost   stateCost
}

// redisCounters are the counters of INFO stats and commandstats.
type redisCounters struct {
	calls    map[string]int64
	bytesIn  int64
	bytesOut int64
}

// newStateMeter returns a meter of the Redis at url; close its client.
func newStateMeter(url string) (*stateMeter, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return &stateMeter{client: redis.NewClient(opt)}, nil
}

func (m *stateMeter) close() { m.client.Close() }

// begin reads the counters at the start of the window. A nil meter does
// nothing.
func (m *stateMeter) begin(ctx context.Context) {
	if m == nil {
		return
	}
	var err error
	if m.before, err = m.read(ctx); err != nil {
		m.cost.Err = err.Error()
	}
}

// end reads the counters at the end of the window and sets cost to the
// difference (Messages is the caller's). A nil meter does nothing.
func (m *stateMeter) end(ctx context.Context) {
	if m == nil || m.cost.Err != "" {
		return
	}
	after, err := m.read(ctx)
	if err != nil {
		m.cost.Err = err.Error()
		return
	}
	m.cost.Calls = map[string]int64{}
	for name, n := range after.calls {
		if d := n - m.before.calls[name]; d > 0 && name != "info" {
			m.cost.Calls[name] = d
		}
	}
	m.cost.BytesIn = after.bytesIn - m.before.bytesIn
	m.cost.BytesOut = after.bytesOut - m.before.bytesOut
}

// read returns the Redis's counters now.
func (m *stateMeter) read(ctx context.Context) (redisCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := m.client.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		return redisCounters{}, fmt.Errorf("state redis: INFO: %w", err)
	}
	return parseInfo(s), nil
}

// parseInfo reads the counters from the text of INFO stats and
// commandstats: "total_net_input_bytes:123" and
// "cmdstat_evalsha:calls=4,usec=...", subcommands as "client|setinfo".
func parseInfo(s string) redisCounters {
	c := redisCounters{calls: map[string]int64{}}
	for line := range strings.Lines(s) {
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch {
		case key == "total_net_input_bytes":
			c.bytesIn, _ = strconv.ParseInt(val, 10, 64)
		case key == "total_net_output_bytes":
			c.bytesOut, _ = strconv.ParseInt(val, 10, 64)
		case strings.HasPrefix(key, "cmdstat_"):
			calls, _, _ := strings.Cut(strings.TrimPrefix(val, "calls="), ",")
			c.calls[strings.TrimPrefix(key, "cmdstat_")], _ = strconv.ParseInt(calls, 10, 64)
		}
	}
	return c
}

// durableSteps returns the steps of durable mode's cost on bus, which put
// their results in res.Durable; url starts the bus's engine.
func durableSteps(cfg config, res *results, engs *engines, bus string, cr *clusterResult, url func() (string, bool)) []step {
	dr := &durableResult{Bus: bus, Echo: map[string]durableEchoResult{}, Fanout: map[int]durableFanoutResult{}}
	res.Durable = dr
	urls := func() (busURL, stateURL string, ok bool) {
		if busURL, ok = url(); !ok {
			dr.Err, dr.Engine = cr.Err, cr.Engine
			return "", "", false
		}
		dr.Engine = cr.Engine
		stateURL, err := engs.url(stateEngine)
		if err != nil {
			if dr.Err == "" {
				dr.Err = err.Error()
			}
			return "", "", false
		}
		return busURL, stateURL, true
	}
	// Each run is a step of its own, bounded on its own: plain, then
	// durable.
	var steps []step
	meter := func(stateURL string, cost *stateCost) (*stateMeter, bool) {
		m, err := newStateMeter(stateURL)
		if err != nil {
			cost.Err = err.Error()
			return nil, false
		}
		return m, true
	}
	for _, tr := range clusterTransports {
		sys := tetherSystem(tr)
		for _, on := range []bool{false, true} {
			steps = append(steps, step{"durable " + bus + " echo " + tr + onOff(on), func(ctx context.Context) {
				busURL, stateURL, ok := urls()
				if !ok {
					return
				}
				e := dr.Echo[tr]
				if !on {
					e.Off = clusterEchoOn(ctx, busURL, nil, sys, cfg.EchoClients, cfg.ClusterEchoTotal)
				} else if m, ok := meter(stateURL, &e.State); ok {
					e.On = clusterEchoOn(ctx, busURL, m, sys, cfg.EchoClients, cfg.ClusterEchoTotal)
					m.close()
					e.State = m.cost
					e.State.Messages = 2 * e.On.RoundTrips
				}
				dr.Echo[tr] = e
			}})
		}
	}
	for _, n := range cfg.FanoutSizes {
		for _, on := range []bool{false, true} {
			steps = append(steps, step{fmt.Sprintf("durable %s fan-out %d%s", bus, n, onOff(on)), func(ctx context.Context) {
				busURL, stateURL, ok := urls()
				if !ok {
					return
				}
				f := dr.Fanout[n]
				if !on {
					f.Off = runClusterFanout(ctx, busURL, nil, n, cfg.ClusterFanoutRounds)
				} else if m, ok := meter(stateURL, &f.State); ok {
					f.On = runClusterFanout(ctx, busURL, m, n, cfg.ClusterFanoutRounds)
					m.close()
					f.State = m.cost
					f.State.Messages = f.On.Deliveries
				}
				dr.Fanout[n] = f
			}})
		}
	}
	return steps
}

func onOff(on bool) string {
	if on {
		return " on"
	}
	return " off"
}

// clusterEchoOn starts a cluster on the bus at url, durable when m is not
// nil (its Redis keeps the state), and runs the echo on the owner.
func clusterEchoOn(ctx context.Context, url string, m *stateMeter, sys *system, clients, total int) echoResult {
	r := echoResult{Clients: clients}
	nodes, err := startCluster(url, m.env()...)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	f := &fleet{servers: nodes, env: newDialEnv(true), meter: m}
	defer f.close()
	f.conns, err = dialMany(ctx, sys, nodes[0].base(), f.env, clients, clients)
	if err != nil {
		r.Err = err.Error()
	}
	echoOn(ctx, f, total, &r)
	return r
}

// env returns the environment of the nodes m measures: durable, with
// their state in m's Redis. A nil meter's nodes are plain.
func (m *stateMeter) env() []string {
	if m == nil {
		return nil
	}
	o := m.client.Options()
	return []string{stateEnv + "=redis://" + o.Addr}
}

// renderDurable writes durable mode's part of section 6.
func renderDurable(w func(format string, args ...any), res *results) {
	dr, cfg := res.Durable, res.Config
	w("**Durable mode's cost.** The same cluster on %s, its nodes plain and then durable (`cluster.NodeOptions.State`: package redisstate on a Redis of their own, ", dr.Bus)
	w("the state Redis, apart from the bus's engine), fresh nodes for each run, the durable run right after the plain one. ")
	w("Echo on the owner as above (%d clients, %d round trips); fan-out over the nodes as above (%d rounds). ", cfg.EchoClients, cfg.ClusterEchoTotal, cfg.ClusterFanoutRounds)
	w("Redis commands and bytes (both directions, on the state Redis's network counters) per message, from its INFO commandstats and stats before and after the measured window: ")
	w("an echo's round trip carries two messages, a delivery one; the commands a script calls count besides its EVALSHA, as Redis counts them; the lease renewals of the window are in. ")
	w("CPU is the three nodes' and the load generator's (the state Redis's is not counted).\n\n")
	if dr.Err != "" {
		w("Not measured: %s.\n\n", dr.Err)
		return
	}
	w("| transport | round trips/s off | on | on × off | CPU/round trip off | on | on × off | p99 on | lost | Redis commands/message | Redis bytes/message |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, tr := range clusterTransports {
		e, ok := dr.Echo[tr]
		if !ok {
			continue
		}
		off, on := e.Off.ServerCPUus+e.Off.ClientCPUus, e.On.ServerCPUus+e.On.ClientCPUus
		w("| %s%s | %s | %s | %s | %.1f µs | %.1f µs | %s | %.0f µs | %d | %s | %s |\n",
			tr, orDash(strings.Trim(e.Off.Err+" "+e.On.Err+" "+e.State.Err, " ")), human(e.Off.PerSec), human(e.On.PerSec), ratio(e.On.PerSec, e.Off.PerSec),
			off, on, ratio(on, off), e.On.P99us, e.Off.Lost+e.On.Lost, e.State.commands(), e.State.bytes())
	}
	w("\n| sessions | connected off / on | p99 off | on | deliveries/s off | on | on × off | CPU/delivery off | on | on × off | lost | Redis commands/message | Redis bytes/message |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range slices.Sorted(maps.Keys(dr.Fanout)) {
		f := dr.Fanout[n]
		off, on := f.Off.ServerCPUus+f.Off.ClientCPUus, f.On.ServerCPUus+f.On.ClientCPUus
		w("| %d%s | %d / %d | %.1f ms | %.1f ms | %s | %s | %s | %.1f µs | %.1f µs | %s | %d | %s | %s |\n",
			n, orDash(strings.Trim(f.Off.Err+" "+f.On.Err+" "+f.State.Err, " ")), f.Off.Connected, f.On.Connected, f.Off.P99ms, f.On.P99ms,
			human(f.Off.PerSec), human(f.On.PerSec), ratio(f.On.PerSec, f.Off.PerSec), off, on, ratio(on, off), f.Off.Lost+f.On.Lost,
			f.State.commands(), f.State.bytes())
	}
	w("\nRedis commands per message, by command:\n\n")
	for _, tr := range clusterTransports {
		if e, ok := dr.Echo[tr]; ok {
			w("- echo %s: %s\n", tr, orNone(e.State.breakdown()))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(dr.Fanout)) {
		w("- fan-out %d: %s\n", n, orNone(dr.Fanout[n].State.breakdown()))
	}
	w("\n")
}

// commands returns the commands per message, for the table.
func (c stateCost) commands() string {
	if c.Messages == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", c.per(c.calls()))
}

// bytes returns the bytes per message, in and out, for the table.
func (c stateCost) bytes() string {
	if c.Messages == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f (%.0f to Redis, %.0f back)", c.per(c.BytesIn+c.BytesOut), c.per(c.BytesIn), c.per(c.BytesOut))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// renderDurableTargets writes durable mode's line of the summary.
func renderDurableTargets(w func(format string, args ...any), res *results) {
	dr := res.Durable
	if dr == nil {
		return
	}
	if dr.Err != "" {
		w("- Durable mode over %s: not measured (%s)\n", dr.Bus, dr.Err)
		return
	}
	var echo []string
	lost := 0
	for _, tr := range clusterTransports {
		if e, ok := dr.Echo[tr]; ok {
			echo = append(echo, fmt.Sprintf("%s %s (%s commands/message)", tr, ratio(e.On.PerSec, e.Off.PerSec), e.State.commands()))
			lost += e.Off.Lost + e.On.Lost
		}
	}
	if len(echo) > 0 {
		w("- Durable mode over %s, echo on the owner, durable against plain (round trips/s): %s; %d lost\n", dr.Bus, strings.Join(echo, ", "), lost)
	}
	if len(dr.Fanout) > 0 {
		n := slices.Max(slices.Collect(maps.Keys(dr.Fanout)))
		f := dr.Fanout[n]
		w("- Durable mode over %s, fan-out to %d sessions: p99 %.1f ms against %.1f ms plain, deliveries/s %s, %s Redis commands/message, %d of %d connected, %d lost\n",
			dr.Bus, n, f.On.P99ms, f.Off.P99ms, ratio(f.On.PerSec, f.Off.PerSec), f.State.commands(), f.On.Connected, n, f.On.Lost+f.Off.Lost)
	}
}
