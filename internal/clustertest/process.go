package clustertest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bounds of a node's start and stop.
const (
	// StartTimeout bounds how long a node has to print its ready line.
	StartTimeout = 30 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before it kills.
	StopTimeout = 10 * time.Second
)

// Ready is the line a node prints once it accepts connections:
//
//	ready name=n1 addr=127.0.0.1:41234 echo=<node id> chat=<node id> pid=<pid>
type Ready struct {
	Name string // the node's name, in logs
	Addr string // the host:port it serves HTTP on
	Echo string // the cluster node id of its echo service, at /rt/
	Chat string // the cluster node id of its chat, at /chat/rt/
	PID  int
}

// String formats r as a node prints it.
func (r Ready) String() string {
	return fmt.Sprintf("ready name=%s addr=%s echo=%s chat=%s pid=%d", r.Name, r.Addr, r.Echo, r.Chat, r.PID)
}

// ParseReady parses a ready line. It returns an error for a line that is
// not one, or that lacks the address or the pid.
func ParseReady(line string) (Ready, error) {
	rest, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		return Ready{}, fmt.Errorf("clustertest: not a ready line: %q", line)
	}
	var r Ready
	for _, f := range strings.Fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "name":
			r.Name = v
		case "addr":
			r.Addr = v
		case "echo":
			r.Echo = v
		case "chat":
			r.Chat = v
		case "pid":
			r.PID, _ = strconv.Atoi(v)
		}
	}
	if r.Addr == "" || r.PID <= 0 {
		return Ready{}, fmt.Errorf("clustertest: a ready line without addr or pid: %q", line)
	}
	return r, nil
}

// NodeProcess is a node running as a process of its own. Its methods may be called from any goroutine.
type NodeProcess struct {
	Ready
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // its exit status; set before done is closed
}

// StartNodeProcess runs bin (examples/cluster built) in node mode on the bus at
// busURL, named name, with args added to its flags, and waits for its ready
// line. What the node writes besides goes to log, each line prefixed with
// its name. The node is in a process group of its own and, on Linux, dies
// with the process that started it.
func StartNodeProcess(bin, busURL, name string, log io.Writer, args ...string) (*NodeProcess, error) {
	cmd := exec.Command(bin, append([]string{"-node", "-bus-url", busURL, "-listen", "127.0.0.1:0", "-name", name}, args...)...)
	cmd.SysProcAttr = procAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &prefixWriter{prefix: name + ": ", w: log}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &NodeProcess{cmd: cmd, done: make(chan struct{})}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for i := 0; sc.Scan(); i++ {
			if i == 0 {
				first <- sc.Text()
			} else {
				fmt.Fprintf(log, "%s: %s\n", name, sc.Text())
			}
		}
		close(first)
		n.err = cmd.Wait()
		close(n.done)
	}()
	select {
	case line, ok := <-first:
		if !ok {
			<-n.done
			return nil, fmt.Errorf("clustertest: node %s exited before it was ready: %v", name, n.err)
		}
		if n.Ready, err = ParseReady(line); err != nil {
			n.Stop()
			return nil, err
		}
		return n, nil
	case <-time.After(StartTimeout):
		n.Kill()
		return nil, fmt.Errorf("clustertest: node %s printed no ready line within %v", name, StartTimeout)
	}
}

// Stop ends the node with SIGTERM (its sessions end with 1001), kills it
// if it has not exited after StopTimeout, and waits for it to exit.
func (n *NodeProcess) Stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(StopTimeout):
		n.Kill()
	}
}

// Kill ends the node with SIGKILL, as a crash would, and waits for it to
// exit.
func (n *NodeProcess) Kill() {
	n.cmd.Process.Kill()
	<-n.done
}

// Done is closed once the node has exited.
func (n *NodeProcess) Done() <-chan struct{} { return n.done }

// Err returns how the node exited, once Done is closed: nil for success.
func (n *NodeProcess) Err() error {
	select {
	case <-n.done:
		return n.err
	default:
		return errors.New("clustertest: the node is running")
	}
}

// prefixWriter writes each line with a prefix. Lines are assumed to come
// whole, as the nodes' loggers write them.
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			if _, err := io.WriteString(pw.w, pw.prefix+line); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}
