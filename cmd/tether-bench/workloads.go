package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// dialMany opens n sessions of sys, par at a time, and returns those that
// opened, with the first error.
func dialMany(ctx context.Context, sys *system, base string, env *dialEnv, n, par int) ([]conn, error) {
	conns := make([]conn, n)
	var firstErr error
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := sys.dial(ctx, base, env)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: dial: %w", sys.Name, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out, firstErr
}

func closeAll(conns []conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.Close()
		})
	}
	wg.Wait()
}

// fleet is one measurement's server processes and the clients connected
// to them: one fresh server, or the nodes of a cluster.
type fleet struct {
	// servers are the server processes; broadcasts are ordered from the
	// first.
	servers []*child
	env     *dialEnv
	conns   []conn
	// meter, if not nil, reads the durable state's Redis around the
	// measured window of the echo and the fan-out.
	meter *stateMeter
}

// startFleet starts a fresh server process, runs before (if not nil) on it,
// and connects n clients of sys, par at a time. It returns a nil fleet when
// the server or before failed; otherwise a fleet to close, with the dial
// error, if any, beside the clients that did connect.
func startFleet(ctx context.Context, sys *system, n, par int, keepAlive bool, before func(*child) error) (*fleet, error) {
	c, err := startChild()
	if err != nil {
		return nil, err
	}
	if before != nil {
		if err := before(c); err != nil {
			c.stop()
			return nil, err
		}
	}
	f := &fleet{servers: []*child{c}, env: newDialEnv(keepAlive)}
	f.conns, err = dialMany(ctx, sys, c.base(), f.env, n, par)
	return f, err
}

// disconnect disconnects the clients and leaves the servers running.
func (f *fleet) disconnect() {
	closeAll(f.conns)
	f.conns = nil
	f.env.close()
}

// close disconnects the clients and stops the servers.
func (f *fleet) close() {
	f.disconnect()
	for _, c := range f.servers {
		c.stop()
	}
}

// serverCPU returns the CPU time the server processes have used.
func (f *fleet) serverCPU() time.Duration {
	var d time.Duration
	for _, c := range f.servers {
		d += processCPU(c.cmd.Process.Pid)
	}
	return d
}

// sessions returns how many sessions of family the servers hold for
// broadcasts, in all.
func (f *fleet) sessions(family string) (int, error) {
	n := 0
	for _, c := range f.servers {
		k, err := c.sessions(family)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// percentile returns the p-th percentile (0..1) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds)-1) * p)
	return ds[i]
}

// echoResult is workload 1 (and half of workload 5) for one system.
type echoResult struct {
	Clients     int     `json:"clients"`
	RoundTrips  int     `json:"roundTrips"`
	Seconds     float64 `json:"seconds"`
	PerSec      float64 `json:"perSec"`
	P50us       float64 `json:"p50us"`
	P99us       float64 `json:"p99us"`
	Lost        int     `json:"lost"`
	Refused     int64   `json:"refused"`
	BytesPerMsg float64 `json:"bytesPerMsg"`
	// ServerCPUus and ClientCPUus are the CPU time per round trip of the
	// server process and of the load generator (its clients), in
	// microseconds: steadier than throughput on a shared machine.
	ServerCPUus float64 `json:"serverCPUus"`
	ClientCPUus float64 `json:"clientCPUus"`
	Err         string  `json:"err,omitempty"`
}

// runEcho runs total round trips of 64-byte messages over clients
// sessions, each client waiting for its echo before sending again. A reply
// that does not come within 5 seconds counts as lost and ends that client.
func runEcho(ctx context.Context, sys *system, clients, total int) echoResult {
	res := echoResult{Clients: clients}
	f, err := startFleet(ctx, sys, clients, clients, true, nil)
	if err != nil {
		res.Err = err.Error()
	}
	if f == nil {
		return res
	}
	defer f.close()
	echoOn(ctx, f, total, &res)
	return res
}

// echoOn runs the echo's round trips over the clients of f, into res.
func echoOn(ctx context.Context, f *fleet, total int, res *echoResult) {
	env, conns := f.env, f.conns
	if len(conns) == 0 {
		return
	}
	per := total / len(conns)
	rtts := make([][]time.Duration, len(conns))
	var lost atomic.Int64
	bytes0 := env.ctr.n.Load()
	f.meter.begin(ctx)
	server0, client0 := f.serverCPU(), selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for i, cn := range conns {
		wg.Go(func() {
			if hc, ok := cn.(handlerConn); ok {
				ds := echoByHandler(ctx, hc, i, per)
				lost.Add(int64(per - len(ds)))
				rtts[i] = ds
				return
			}
			msg := make([]byte, 64)
			for j := range msg {
				msg[j] = 'e'
			}
			ds := make([]time.Duration, 0, per)
			for k := 0; k < per && ctx.Err() == nil; k++ {
				copy(msg, strconv.Itoa(i*per+k))
				t0 := time.Now()
				if err := cn.Send(ctx, msg); err != nil {
					lost.Add(int64(per - k))
					break
				}
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				p, err := cn.Recv(rctx)
				cancel()
				if err != nil || !bytes.Equal(p, msg) {
					lost.Add(int64(per - k))
					break
				}
				ds = append(ds, time.Since(t0))
			}
			rtts[i] = ds
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	server1, client1 := f.serverCPU(), selfCPU()
	f.meter.end(ctx)
	all := slices.Concat(rtts...)
	slices.Sort(all)
	res.RoundTrips = len(all)
	if len(all) > 0 && server1 > server0 {
		res.ServerCPUus = float64((server1 - server0).Microseconds()) / float64(len(all))
		res.ClientCPUus = float64((client1 - client0).Microseconds()) / float64(len(all))
	}
	res.Seconds = elapsed.Seconds()
	res.PerSec = float64(len(all)) / elapsed.Seconds()
	res.P50us = float64(percentile(all, 0.50).Microseconds())
	res.P99us = float64(percentile(all, 0.99).Microseconds())
	res.Lost = int(lost.Load())
	res.Refused = env.refused.n.Load()
	if len(all) > 0 {
		res.BytesPerMsg = float64(env.ctr.n.Load()-bytes0) / float64(2*len(all))
	}
	if ctx.Err() != nil && res.Err == "" {
		res.Err = "time limit reached"
	}
}

// echoByHandler runs client i's share of the echo on a connection whose
// messages go to a handler: the handler, on the connection's reader,
// checks each echo and sends the next message, as a raw gorilla client
// does in its read loop. It returns the round-trip times.
func echoByHandler(ctx context.Context, cn handlerConn, i, per int) []time.Duration {
	var (
		mu      sync.Mutex // the handler's state, against the end by ctx
		msg     = bytes.Repeat([]byte{'e'}, 64)
		ds      = make([]time.Duration, 0, per)
		t0      time.Time
		stopped bool
		done    = make(chan struct{})
	)
	send := func() bool { // mu held
		copy(msg, strconv.Itoa(i*per+len(ds)))
		t0 = time.Now()
		return cn.Send(ctx, msg) == nil
	}
	cn.setHandler(func(p []byte) {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		ok := bytes.Equal(p, msg)
		if ok {
			ds = append(ds, time.Since(t0))
		}
		if !ok || len(ds) == per || ctx.Err() != nil || !send() {
			stopped = true
			close(done)
		}
	})
	defer cn.setHandler(nil)
	mu.Lock()
	if !send() {
		stopped = true
		close(done)
	}
	mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	if !stopped {
		stopped = true
		close(done)
	}
	return slices.Clone(ds)
}

// streamResult is workload 2 (and half of workload 5) for one system.
type streamResult struct {
	Clients     int     `json:"clients"`
	Messages    int     `json:"messages"`
	Seconds     float64 `json:"seconds"`
	PerSec      float64 `json:"perSec"`
	Lost        int     `json:"lost"`
	Refused     int64   `json:"refused"`
	BytesPerMsg float64 `json:"bytesPerMsg"`
	Err         string  `json:"err,omitempty"`
}

// runStream has each of clients sessions ask the server for total/clients
// messages of 64 bytes and times their arrival.
func runStream(ctx context.Context, sys *system, clients, total int) streamResult {
	res := streamResult{Clients: clients}
	f, err := startFleet(ctx, sys, clients, clients, true, nil)
	if err != nil {
		res.Err = err.Error()
	}
	if f == nil {
		return res
	}
	defer f.close()
	env, conns := f.env, f.conns
	if len(conns) == 0 {
		return res
	}
	per := total / len(conns)
	var got, lost atomic.Int64
	bytes0 := env.ctr.n.Load()
	start := time.Now()
	var wg sync.WaitGroup
	for _, cn := range conns {
		wg.Go(func() {
			if err := cn.Send(ctx, []byte("S:"+strconv.Itoa(per))); err != nil {
				lost.Add(int64(per))
				return
			}
			for k := range per {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				p, err := cn.Recv(rctx)
				cancel()
				if err != nil || len(p) != len(streamPayload) {
					lost.Add(int64(per - k))
					return
				}
				got.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.Messages = int(got.Load())
	res.Seconds = elapsed.Seconds()
	res.PerSec = float64(res.Messages) / elapsed.Seconds()
	res.Lost = int(lost.Load())
	res.Refused = env.refused.n.Load()
	if res.Messages > 0 {
		res.BytesPerMsg = float64(env.ctr.n.Load()-bytes0) / float64(res.Messages)
	}
	if ctx.Err() != nil && res.Err == "" {
		res.Err = "time limit reached"
	}
	return res
}

// fanoutResult is workload 3 for one system and session count.
type fanoutResult struct {
	Sessions   int     `json:"sessions"`
	Connected  int     `json:"connected"`
	Rounds     int     `json:"rounds"`
	Deliveries int     `json:"deliveries"`
	P50ms      float64 `json:"p50ms"`
	P99ms      float64 `json:"p99ms"`
	PerSec     float64 `json:"perSec"`
	Lost       int     `json:"lost"`
	// ServerCPUus and ClientCPUus are the CPU time per delivery of the
	// server process and of the load generator, in microseconds, from the
	// first round until ackSettle after the last: what the deliveries
	// cost, the acknowledgements they cause included.
	ServerCPUus float64 `json:"serverCPUus"`
	ClientCPUus float64 `json:"clientCPUus"`
	Err         string  `json:"err,omitempty"`
}

// ackSettle is how long the fan-out waits after its last round before it
// reads the CPU times: a Tether client acknowledges the end of a burst once
// 1 s passes without a message (PROTOCOL.md section 5.1).
const ackSettle = 1200 * time.Millisecond

// runFanout connects n sessions to a fresh server, then has the server
// broadcast rounds messages, one round at a time: a round is over when
// every session has its message (or after 10 seconds, the rest counted
// lost). Latency is from the start of the broadcast loop to the arrival.
func runFanout(ctx context.Context, sys *system, n, rounds int) fanoutResult {
	res := fanoutResult{Sessions: n, Rounds: rounds}
	// HTTP keep-alive for the mixed fan-out's long polls, as a browser
	// keeps its connections: without it every poll, one per delivery,
	// would open a TCP connection of its own.
	f, err := startFleet(ctx, sys, n, 64, sys == mixedFanout, nil)
	if err != nil {
		res.Err = err.Error()
	}
	if f == nil {
		return res
	}
	defer f.close()
	fanoutOn(ctx, f, sys.Family, rounds, &res)
	return res
}

// fanoutOn has the first server of f broadcast rounds messages to the
// clients of f, of family, one round at a time, into res.
func fanoutOn(ctx context.Context, f *fleet, family string, rounds int, res *fanoutResult) {
	c, conns := f.servers[0], f.conns
	res.Connected = len(conns)
	if len(conns) == 0 {
		return
	}
	lat := make([][]time.Duration, len(conns))
	latMu := make([]sync.Mutex, len(conns)) // for handlers, which may still run at the end
	var got atomic.Int64
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, cn := range conns {
		lat[i] = make([]time.Duration, 0, rounds)
		if hc, ok := cn.(handlerConn); ok {
			hc.setHandler(func(p []byte) {
				if ts, ok := parseBroadcast(p); ok {
					d := time.Duration(time.Now().UnixNano() - ts)
					latMu[i].Lock()
					lat[i] = append(lat[i], d)
					latMu[i].Unlock()
					got.Add(1)
				}
			})
			continue
		}
		wg.Go(func() {
			for {
				p, err := cn.Recv(rctx)
				if err != nil {
					return
				}
				if ts, ok := parseBroadcast(p); ok {
					lat[i] = append(lat[i], time.Duration(time.Now().UnixNano()-ts))
					got.Add(1)
				}
			}
		})
	}
	// Every session is in the server's broadcast list before the first
	// round, within the bound of a round.
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := f.sessions(family)
		if err != nil {
			res.Err = err.Error()
			break
		}
		if n >= len(conns) || !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var busy time.Duration
	f.meter.begin(ctx)
	server0, client0 := f.serverCPU(), selfCPU()
	perfControl("enable")
	for r := range rounds {
		if ctx.Err() != nil {
			break
		}
		want := int64(len(conns) * (r + 1))
		t0 := time.Now()
		if _, err := c.broadcast(family); err != nil {
			res.Err = err.Error()
			break
		}
		deadline := t0.Add(10 * time.Second)
		for got.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(200 * time.Microsecond)
		}
		busy += time.Since(t0)
		time.Sleep(50 * time.Millisecond) // let the clients settle between rounds
	}
	time.Sleep(ackSettle)
	server1, client1 := f.serverCPU(), selfCPU()
	perfControl("disable")
	f.meter.end(ctx)
	cancel()
	// A raw gorilla reader does not see the cancel: closing the
	// connections ends every reader now, not at the step's time limit.
	f.disconnect()
	wg.Wait()
	for i := range lat {
		latMu[i].Lock()
		lat[i] = slices.Clone(lat[i])
		latMu[i].Unlock()
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.Deliveries = len(all)
	res.Lost = len(conns)*rounds - len(all)
	res.P50ms = float64(percentile(all, 0.50).Microseconds()) / 1000
	res.P99ms = float64(percentile(all, 0.99).Microseconds()) / 1000
	if busy > 0 {
		res.PerSec = float64(len(all)) / busy.Seconds()
	}
	if len(all) > 0 && server1 > server0 {
		res.ServerCPUus = float64((server1 - server0).Microseconds()) / float64(len(all))
		res.ClientCPUus = float64((client1 - client0).Microseconds()) / float64(len(all))
	}
	if ctx.Err() != nil && res.Lost > 0 && res.Err == "" {
		// The rounds not run count as lost: say why.
		res.Err = "time limit reached"
	}
}

// idleResult is workload 4 for one system and session count.
type idleResult struct {
	Sessions          int     `json:"sessions"`
	Connected         int     `json:"connected"`
	RSSPerSession     float64 `json:"rssPerSession"`
	HeapPerSession    float64 `json:"heapPerSession"`
	StackPerSession   float64 `json:"stackPerSession"`
	GoroutinesPerSess float64 `json:"goroutinesPerSession"`
	Err               string  `json:"err,omitempty"`
}

// runIdle connects n sessions to a fresh server process and compares its
// memory and goroutines before and after, once the sessions are idle.
func runIdle(ctx context.Context, sys *system, n int, settle time.Duration) idleResult {
	res := idleResult{Sessions: n}
	var before serverStats
	f, err := startFleet(ctx, sys, n, 64, false, func(c *child) (err error) {
		before, err = c.stats()
		return err
	})
	if err != nil {
		res.Err = err.Error()
	}
	if f == nil {
		return res
	}
	defer f.close()
	c, conns := f.servers[0], f.conns
	res.Connected = len(conns)
	if len(conns) == 0 {
		return res
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
	}
	after, err := c.stats()
	if err != nil {
		res.Err = err.Error()
		return res
	}
	k := float64(len(conns))
	res.RSSPerSession = float64(after.RSS-before.RSS) / k
	res.HeapPerSession = float64(after.HeapAlloc-before.HeapAlloc) / k
	res.StackPerSession = float64(after.StackInuse-before.StackInuse) / k
	res.GoroutinesPerSess = float64(after.Goroutines-before.Goroutines) / k
	return res
}

// perfControlEnv names a FIFO, perf's control FIFO (perf stat --control
// fifo:PATH -D -1 -p <server pid>): the fan-out writes "enable" to it as
// its measured window starts and "disable" as it ends, so that perf counts
// the window alone, as the CPU figures do.
const perfControlEnv = "TETHER_BENCH_PERF_FIFO"

// perfControl writes cmd to the FIFO perfControlEnv names, if any.
func perfControl(cmd string) {
	path := os.Getenv(perfControlEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tether-bench: %s: %v\n", perfControlEnv, err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, cmd)
}
