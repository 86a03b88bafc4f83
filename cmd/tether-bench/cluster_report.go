package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// renderCluster writes section 6, the cluster.
func renderCluster(w func(format string, args ...any), res *results) {
	w("## 6. Cluster of %d nodes\n\n", clusterNodes)
	w("Each node is a bench server process of its own, a Tether server made a node of one cluster (`Options.Cluster` = `cluster.NewNode`) ")
	w("on a bus whose engine the bench starts on a free loopback port: Redis through `cluster/redisbus`, NATS through `cluster/natsbus`. ")
	w("Every node of a cluster, the engine and the load generator share the machine's cores.\n\n")
	if len(res.Cluster) > 0 {
		renderClusterRuns(w, res)
	}
	if res.Durable != nil {
		renderDurable(w, res)
	}
	var engines []string
	for _, bus := range clusterBuses {
		if cr := res.Cluster[bus]; cr != nil && cr.Engine != "" {
			engines = append(engines, cr.Engine)
		}
	}
	if len(engines) == 0 && res.Durable != nil && res.Durable.Engine != "" {
		engines = append(engines, res.Durable.Engine)
	}
	if len(engines) > 0 {
		w("Engines: %s.\n\n", strings.Join(engines, "; "))
	}
}

// renderClusterRuns writes the echo and fan-out of section 6.
func renderClusterRuns(w func(format string, args ...any), res *results) {
	cfg := res.Config
	w("**Echo on the owner and through another node.** %d clients negotiate with the first node, which owns their sessions, and run %d round trips of 64 bytes in all, as in section 1: ",
		cfg.EchoClients, cfg.ClusterEchoTotal)
	w("once with every request sent to the owner, once with every request but negotiate (the WebSocket, the streams and polls, the sends) sent to the second node, which relays them over the bus. ")
	w("The ratio is the relayed round trips/s over the owner's; CPU is the three nodes' and the load generator's per round trip (the engine's is not counted).\n\n")
	w("| bus | transport | owner round trips/s | owner p50 | owner p99 | relayed round trips/s | relayed p50 | relayed p99 | lost | relayed × owner | CPU owner | CPU relayed |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, bus := range clusterBuses {
		cr := res.Cluster[bus]
		if cr == nil {
			continue
		}
		if cr.Err != "" {
			w("| %s | (%s) | | | | | | | | | | |\n", bus, cr.Err)
			continue
		}
		for _, tr := range clusterTransports {
			e, ok := cr.Echo[tr]
			if !ok {
				continue
			}
			o, r := e.Owner, e.Relayed
			w("| %s | %s%s | %s | %.0f µs | %.0f µs | %s | %.0f µs | %.0f µs | %d | %s | %.1f µs | %.1f µs |\n",
				bus, tr, orDash(strings.Trim(o.Err+" "+r.Err, " ")), human(o.PerSec), o.P50us, o.P99us, human(r.PerSec), r.P50us, r.P99us,
				o.Lost+r.Lost, ratio(r.PerSec, o.PerSec), o.ServerCPUus+o.ClientCPUus, r.ServerCPUus+r.ClientCPUus)
		}
	}
	w("\n**Fan-out across nodes.** WebSocket sessions spread evenly over the nodes, each owned by the node it connects to, all subscribed to one topic; ")
	w("the first node publishes one 64-byte message a round with `Server.Publish` (%d rounds): it delivers to its own subscribers and sends the message once on the bus, ", cfg.FanoutRounds)
	w("and each other node delivers it to its own. Latency and deliveries/s are measured as in section 3; CPU is the three nodes' and the load generator's per delivery.\n\n")
	w("| bus | sessions | connected | p50 | p99 | deliveries/s | lost | p99 × one server | CPU/delivery |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, bus := range clusterBuses {
		cr := res.Cluster[bus]
		if cr == nil || cr.Err != "" {
			continue
		}
		for _, n := range slices.Sorted(maps.Keys(cr.Fanout)) {
			f := cr.Fanout[n]
			one := res.Fanout["tether/websocket"][n]
			w("| %s | %d | %d | %.1f ms | %.1f ms | %s | %d | %s | %.1f µs |\n", bus+orDash(f.Err), n, f.Connected, f.P50ms, f.P99ms,
				human(f.PerSec), f.Lost, ratio(f.P99ms, one.P99ms), f.ServerCPUus+f.ClientCPUus)
		}
	}
	w("\n\"× one server\" compares with tether/websocket's fan-out of the same size in section 3, on one server process.\n\n")
}

// renderClusterTargets writes the cluster's lines of the summary.
func renderClusterTargets(w func(format string, args ...any), res *results) {
	defer renderDurableTargets(w, res)
	for _, bus := range clusterBuses {
		cr := res.Cluster[bus]
		if cr == nil {
			continue
		}
		if cr.Err != "" {
			w("- Cluster over %s: not measured (%s)\n", bus, cr.Err)
			continue
		}
		var ratios []string
		lost := 0
		for _, tr := range clusterTransports {
			if e, ok := cr.Echo[tr]; ok {
				ratios = append(ratios, tr+" "+ratio(e.Relayed.PerSec, e.Owner.PerSec))
				lost += e.Owner.Lost + e.Relayed.Lost
			}
		}
		if len(ratios) > 0 {
			w("- Cluster over %s, echo through another node against on the owner (round trips/s): %s; %d lost\n", bus, strings.Join(ratios, ", "), lost)
		}
		if len(cr.Fanout) > 0 {
			n := slices.Max(slices.Sorted(maps.Keys(cr.Fanout)))
			f := cr.Fanout[n]
			w("- Cluster over %s, fan-out to %d sessions over %d nodes: p99 %.1f ms, %s deliveries/s, %d of %d connected, %d lost\n",
				bus, n, clusterNodes, f.P99ms, human(f.PerSec), f.Connected, n, f.Lost)
		}
	}
}

// clusterPanels are the chart's panels of the cluster: the echo on the
// owner and relayed, per bus and transport, and the fan-out's p99.
func clusterPanels(res *results) []panel {
	echo := panel{title: fmt.Sprintf("6. Cluster of %d nodes, echo on the owner and through another node: round trips/s (higher is better)", clusterNodes)}
	fan := panel{title: fmt.Sprintf("6. Cluster of %d nodes, fan-out: p99 ms (lower is better)", clusterNodes)}
	for _, bus := range clusterBuses {
		cr := res.Cluster[bus]
		if cr == nil {
			continue
		}
		for _, tr := range clusterTransports {
			e, ok := cr.Echo[tr]
			if !ok {
				continue
			}
			echo.bars = append(echo.bars,
				bar{bus + " " + tr + " owner", "tether", e.Owner.PerSec, fmt.Sprintf("%.0f  p99 %.1f ms", e.Owner.PerSec, e.Owner.P99us/1000)},
				bar{bus + " " + tr + " relayed", "relayed", e.Relayed.PerSec, fmt.Sprintf("%.0f  p99 %.1f ms  (%s)", e.Relayed.PerSec, e.Relayed.P99us/1000, ratio(e.Relayed.PerSec, e.Owner.PerSec))})
		}
		for _, n := range slices.Sorted(maps.Keys(cr.Fanout)) {
			f := cr.Fanout[n]
			fan.bars = append(fan.bars, bar{fmt.Sprintf("%s %d sessions", bus, n), "tether", f.P99ms, fmt.Sprintf("p99 %.1f  p50 %.1f ms", f.P99ms, f.P50ms)})
		}
	}
	var ps []panel
	for _, p := range []panel{echo, fan} {
		if len(p.bars) > 0 {
			ps = append(ps, p)
		}
	}
	return ps
}
