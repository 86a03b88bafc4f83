package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// serveEnv, set in a child's environment, makes the binary (or the test
// binary) run as a bench server.
const serveEnv = "TETHER_BENCH_SERVE"

// child is a bench server in a process of its own, so that its memory is
// its own and starts fresh.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string // host:port
	ctl   *http.Client
}

// startChild re-executes this binary as a server, with env added to its
// environment, and waits for its address.
func startChild(env ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve")
	cmd.Env = append(append(os.Environ(), serveEnv+"=1"), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("bench server did not start: %q %v", line, err)
	}
	return &child{cmd: cmd, stdin: stdin, addr: addr,
		ctl: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}, nil
}

func (c *child) base() string { return "http://" + c.addr }

func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

func (c *child) stats() (serverStats, error) {
	var st serverStats
	resp, err := c.ctl.Get(c.base() + "/ctl/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// broadcast orders one broadcast to every session of sys and returns how
// many sends succeeded.
func (c *child) broadcast(sys string) (int, error) {
	var n int
	var d int64
	err := c.scan("/ctl/broadcast?sys="+sys, &n, &d)
	return n, err
}

// sessions returns how many sessions of sys the server holds for
// broadcasts.
func (c *child) sessions(sys string) (int, error) {
	var n int
	err := c.scan("/ctl/sessions?sys="+sys, &n)
	return n, err
}

// scan gets a control path and reads the answer's numbers into v.
func (c *child) scan(path string, v ...any) error {
	resp, err := c.ctl.Get(c.base() + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = fmt.Fscan(resp.Body, v...)
	return err
}

// raiseFileLimit raises RLIMIT_NOFILE to its hard limit and returns it.
func raiseFileLimit() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	rl.Cur = rl.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// counter counts the bytes read and written on the client side of every
// connection dialed through it: the bytes on the wire above TCP.
type counter struct {
	n atomic.Int64
}

type countedConn struct {
	net.Conn
	c *counter
}

func (cc *countedConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.n.Add(int64(n))
	return n, err
}

func (cc *countedConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.n.Add(int64(n))
	return n, err
}

// sourceAddrs spreads connections over loopback source addresses so that
// ten thousand sessions, run after run, do not exhaust ephemeral ports.
var sourceAddrs = func() []*net.TCPAddr {
	var out []*net.TCPAddr
	for i := 2; i < 18; i++ {
		out = append(out, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
	}
	return out
}()

var nextSource atomic.Uint32

// dialFunc returns a dialer counting bytes into c.
func (c *counter) dialFunc() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: sourceAddrs[nextSource.Add(1)%uint32(len(sourceAddrs))]}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countedConn{Conn: conn, c: c}, nil
	}
}
