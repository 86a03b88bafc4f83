package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// counts are the clients' totals.
type counts struct {
	up, sent, received, errors atomic.Int64
	firstErr                   atomic.Value // string
}

func (n *counts) fail(err error) {
	n.errors.Add(1)
	n.firstErr.CompareAndSwap(nil, err.Error())
}

// soak starts the server child, dials c.sessions clients, holds them with
// traffic for c.duration, then closes them and stops the server.
func soak(c *config) error {
	addrs, err := freeAddrs(c.addrs)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(exe, "-serve", "-listen", strings.Join(addrs, ","),
		"-sessions", strconv.Itoa(c.sessions), "-transports", strings.Join(c.transports, ","),
		"-report", c.report.String(), "-maxgrowth", strconv.FormatFloat(c.maxGrowth, 'g', -1, 64))
	child.Stderr = os.Stderr
	childIn, _ := child.StdinPipe()
	childOut, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		return err
	}
	defer child.Process.Kill()
	lines := bufio.NewScanner(childOut)
	if !lines.Scan() || lines.Text() != "ready" {
		return fmt.Errorf("the server child did not start: %q", lines.Text())
	}
	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		for lines.Scan() {
			fmt.Println(lines.Text())
		}
	}()

	fmt.Printf("soak: %d sessions on %s, %.2f messages/s each way per session, for %v; server on %s\n",
		c.sessions, strings.Join(c.transports, ","), c.rate, c.duration, strings.Join(addrs, ","))
	// One HTTP client for all sessions, as a browser shares one per
	// origin: long polls and streams each hold a connection, sends share
	// a pool.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}

	var n counts
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	dials := make(chan struct{}, 100) // dials at once
	for i := range c.sessions {
		dials <- struct{}{}
		name := c.transports[i%len(c.transports)]
		base := "http://" + addrs[i%len(addrs)] + "/rt/"
		wg.Go(func() {
			cs, err := client.Dial(ctx, base, &client.Options{Transports: []string{name}, HTTPClient: hc})
			<-dials
			if err != nil {
				n.fail(fmt.Errorf("dial %s: %w", name, err))
				return
			}
			n.up.Add(1)
			run(ctx, cs, c.rate, stop, &n)
		})
		if i%1000 == 999 {
			fmt.Printf("soak: %d sessions dialed, %d up, %v\n", i+1, n.up.Load(), time.Since(start).Round(time.Second))
		}
	}
	for n.up.Load()+n.errors.Load() < int64(c.sessions) {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("soak: %d sessions up in %v; %d errors\n", n.up.Load(), time.Since(start).Round(time.Millisecond), n.errors.Load())
	fmt.Fprintln(childIn, "steady")

	steadyStart := time.Now()
	tick := time.NewTicker(c.report)
	end := time.After(c.duration)
	lastSent := int64(0)
loop:
	for {
		select {
		case <-tick.C:
			m := readMemory()
			sent := n.sent.Load()
			fmt.Printf("client: steady %-6v up %6d  sent %9d  received %9d  (%6.0f/s)  errors %d  goroutines %6d  live heap %s\n",
				time.Since(steadyStart).Round(time.Second), n.up.Load(), sent, n.received.Load(),
				float64(sent-lastSent)/c.report.Seconds(), n.errors.Load(), m.goroutines, mib(m.heapLive))
			lastSent = sent
		case <-end:
			break loop
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	hc.CloseIdleConnections()
	fmt.Printf("client summary: %d sessions held %v; %d messages sent, %d echoed back exact; %d errors",
		n.up.Load(), c.duration, n.sent.Load(), n.received.Load(), n.errors.Load())
	if e, ok := n.firstErr.Load().(string); ok {
		fmt.Printf(" (first: %s)", e)
	}
	fmt.Println()
	child.Process.Signal(syscall.SIGTERM)
	<-serverDone
	serverErr := child.Wait()
	switch {
	case n.errors.Load() > 0 || n.sent.Load() != n.received.Load() || n.up.Load() != int64(c.sessions):
		return errors.New("soak failed: client errors or missing messages")
	case serverErr != nil:
		return fmt.Errorf("soak failed: server: %w", serverErr)
	}
	fmt.Println("soak: PASS")
	return nil
}

// run sends a message every 1/rate seconds (with jitter) and checks its
// echo, until stop; then it closes the session.
func run(ctx context.Context, cs *client.Session, rate float64, stop <-chan struct{}, n *counts) {
	defer cs.Close(wire.StatusNormalClosure, "")
	period := time.Duration(float64(time.Second) / rate)
	t := time.NewTimer(rand.N(period)) // spread the sessions over one period
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		want := "soak " + strconv.Itoa(i)
		if err := cs.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(want)}); err != nil {
			n.fail(err)
			return
		}
		n.sent.Add(1)
		m, err := cs.Recv(ctx)
		if err != nil {
			n.fail(err)
			return
		}
		if string(m.Data) != want {
			n.fail(fmt.Errorf("echo %q, want %q", m.Data, want))
			return
		}
		n.received.Add(1)
		t.Reset(period/2 + rand.N(period))
	}
}

// freeAddrs returns k free ports, one on each of 127.0.0.1, 127.0.0.2, ...
func freeAddrs(k int) ([]string, error) {
	var addrs []string
	for i := range max(k, 1) {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+1))
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	return addrs, nil
}
