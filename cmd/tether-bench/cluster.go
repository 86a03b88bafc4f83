package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/internal/enginetest"
)

// The cluster workload runs Tether servers as the nodes of a cluster, each
// a bench server process of its own joined to one bus (redis-server or
// nats-server, started by the bench on a free loopback port):
//
//   - echo on the owner against echo through another node: the clients
//     negotiate with the first node, which owns their sessions; then
//     either every request goes to the owner, or every request but
//     negotiate goes to the second node, which relays them over the bus;
//   - fan-out: WebSocket sessions spread over the nodes, each owned by
//     the node it connects to, all subscribed to one topic; the first
//     node publishes with Server.Publish, and the others deliver what
//     the bus brings them.

// Environment of a bench server that is a node of a cluster.
const (
	// busEnv is the bus's URL: redis://host:port or nats://host:port.
	busEnv = "TETHER_BENCH_BUS"
	// nodeNameEnv names the node in its logs.
	nodeNameEnv = "TETHER_BENCH_NODE"
)

// clusterBuses are the buses the cluster workload knows, in the report's
// order.
var clusterBuses = []string{"redis", "nats"}

// clusterNodes is how many nodes each of the bench's clusters has.
const clusterNodes = 3

// clusterTransports are the transports of the cluster's echo.
var clusterTransports = []string{"websocket", "sse", "streaming", "longpoll"}

// clusterEchoResult is the echo of one transport on one bus: on the
// owner, and through a node that relays to the owner.
type clusterEchoResult struct {
	Owner   echoResult `json:"owner"`
	Relayed echoResult `json:"relayed"`
}

// clusterResult is what the cluster workload measured on one bus.
type clusterResult struct {
	// Engine is the engine's version line, or why it did not start.
	Engine string                       `json:"engine"`
	Echo   map[string]clusterEchoResult `json:"echo"`   // by transport
	Fanout map[int]fanoutResult         `json:"fanout"` // by sessions
	Err    string                       `json:"err,omitempty"`
}

// engines starts the engine of each bus once a run, when a step first
// needs it, and stops them all at the end of the run.
type engines struct {
	running map[string]*enginetest.Engine
	dirs    []string
}

// url returns the URL of bus's engine, started if it is not yet.
func (e *engines) url(bus string) (string, error) {
	if eng := e.running[bus]; eng != nil {
		return eng.URL(), nil
	}
	dir, err := os.MkdirTemp("", "tether-bench-"+bus+"-")
	if err != nil {
		return "", err
	}
	e.dirs = append(e.dirs, dir)
	var eng *enginetest.Engine
	switch bus {
	case "redis", stateEngine:
		eng, err = enginetest.StartRedis(dir)
	case "nats":
		eng, err = enginetest.StartNATS(dir)
	default:
		err = fmt.Errorf("unknown bus %q (want %s)", bus, strings.Join(clusterBuses, " or "))
	}
	if err != nil {
		return "", err
	}
	if e.running == nil {
		e.running = map[string]*enginetest.Engine{}
	}
	e.running[bus] = eng
	return eng.URL(), nil
}

// stop stops every engine and removes their directories.
func (e *engines) stop() {
	for _, eng := range e.running {
		eng.Stop()
	}
	for _, dir := range e.dirs {
		os.RemoveAll(dir)
	}
}

// startCluster starts the nodes of a cluster on the bus at url, each a
// bench server process of its own, with env added to their environment.
// It stops those it started when one fails.
func startCluster(url string, env ...string) ([]*child, error) {
	var nodes []*child
	for i := range clusterNodes {
		c, err := startChild(append([]string{busEnv + "=" + url, nodeNameEnv + "=node" + strconv.Itoa(i+1)}, env...)...)
		if err != nil {
			for _, c := range nodes {
				c.stop()
			}
			return nil, err
		}
		nodes = append(nodes, c)
	}
	return nodes, nil
}

// runClusterEcho starts a cluster on the bus at url and runs the echo of
// the Tether transport of sys twice on it, total round trips over clients
// sessions each time: on the owner, then through a node that relays.
func runClusterEcho(ctx context.Context, url string, sys *system, clients, total int) clusterEchoResult {
	var res clusterEchoResult
	nodes, err := startCluster(url)
	if err != nil {
		res.Owner.Err, res.Relayed.Err = err.Error(), err.Error()
		return res
	}
	defer func() {
		for _, c := range nodes {
			c.stop()
		}
	}()
	for _, relayed := range []bool{false, true} {
		r := echoResult{Clients: clients}
		f := &fleet{servers: nodes, env: newDialEnv(true)}
		if relayed {
			f.env.relayVia(nodes[1].addr)
		}
		f.conns, err = dialMany(ctx, sys, nodes[0].base(), f.env, clients, clients)
		if err != nil {
			r.Err = err.Error()
		}
		echoOn(ctx, f, total, &r)
		f.disconnect()
		if relayed {
			res.Relayed = r
		} else {
			res.Owner = r
		}
	}
	return res
}

// runClusterFanout starts a cluster on the bus at url, durable when m is
// not nil (its Redis keeps the state), connects n WebSocket sessions
// spread evenly over its nodes, and runs the fan-out from the first node.
func runClusterFanout(ctx context.Context, url string, m *stateMeter, n, rounds int) fanoutResult {
	res := fanoutResult{Sessions: n, Rounds: rounds}
	nodes, err := startCluster(url, m.env()...)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	f := &fleet{servers: nodes, env: newDialEnv(false), meter: m}
	defer f.close()
	sys := systemByName("tether/websocket")
	for i, c := range nodes {
		share := n / len(nodes)
		if i < n%len(nodes) {
			share++
		}
		conns, err := dialMany(ctx, sys, c.base(), f.env, share, 64)
		if err != nil && res.Err == "" {
			res.Err = err.Error()
		}
		f.conns = append(f.conns, conns...)
	}
	fanoutOn(ctx, f, sys.Family, rounds, &res)
	return res
}

// relayVia sends every request of e's clients but negotiate to the server
// at addr (host:port), WebSocket handshakes included: the sessions are
// made by the server their base URL names, and served by the one at addr.
func (e *dialEnv) relayVia(addr string) {
	e.hc = &http.Client{Transport: &relayTransport{next: e.hc.Transport.(*http.Transport), addr: addr}}
	dial := e.ctr.dialFunc()
	e.wsd.NetDialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, addr)
	}
}

// relayTransport sends every request but negotiate to addr.
type relayTransport struct {
	next *http.Transport
	addr string
}

func (t *relayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/negotiate") {
		r = r.Clone(r.Context())
		r.URL.Host = t.addr
		r.Host = ""
	}
	return t.next.RoundTrip(r)
}

// CloseIdleConnections lets the http.Client close the transport's idle
// connections.
func (t *relayTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// clusterSteps returns the steps of the cluster workload, which put their
// results in res and start the engines through engs: per bus, the echo and
// the fan-out (workload "cluster"); then, on the first bus, durable mode's
// cost (workload "durable", part of "cluster").
func clusterSteps(cfg config, res *results, engs *engines) []step {
	res.Cluster = map[string]*clusterResult{}
	var steps []step
	for i, bus := range cfg.ClusterBuses {
		cr := &clusterResult{Echo: map[string]clusterEchoResult{}, Fanout: map[int]fanoutResult{}}
		// url starts the engine on the bus's first step; if it does not
		// start, the bus's steps do nothing and the report says why.
		url := func() (string, bool) {
			if cr.Err != "" {
				return "", false
			}
			u, err := engs.url(bus)
			if err != nil {
				cr.Err = err.Error()
				return "", false
			}
			cr.Engine = engineVersion(bus)
			return u, true
		}
		if cfg.wants("cluster") {
			res.Cluster[bus] = cr
			for _, tr := range clusterTransports {
				sys := tetherSystem(tr)
				steps = append(steps, step{"cluster " + bus + " echo " + tr, func(ctx context.Context) {
					if u, ok := url(); ok {
						cr.Echo[tr] = runClusterEcho(ctx, u, sys, cfg.EchoClients, cfg.ClusterEchoTotal)
					}
				}})
			}
			for _, n := range cfg.FanoutSizes {
				steps = append(steps, step{fmt.Sprintf("cluster %s fan-out %d", bus, n), func(ctx context.Context) {
					if u, ok := url(); ok {
						cr.Fanout[n] = runClusterFanout(ctx, u, nil, n, cfg.ClusterFanoutRounds)
					}
				}})
			}
		}
		if i == 0 && (cfg.wants("cluster") || cfg.wants("durable")) {
			steps = append(steps, durableSteps(cfg, res, engs, bus, cr, url)...)
		}
	}
	return steps
}

// tetherSystem returns the Tether system of transport tr, for a cluster.
func tetherSystem(tr string) *system {
	return &system{Name: "tether/" + tr, Family: "tether", Transport: tr, dial: dialTether(tr)}
}

// engineVersion returns the version line of bus's engine, or "".
func engineVersion(bus string) string {
	find := enginetest.RedisBinary
	if bus == "nats" {
		find = enginetest.NATSBinary
	}
	bin, err := find()
	if err != nil {
		return ""
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
