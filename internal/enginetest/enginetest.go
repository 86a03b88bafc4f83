// Package enginetest runs real redis-server and nats-server processes for
// tests: each on a free loopback port, in a directory of its own, with
// nothing persisted. An engine can be stopped, killed and started again on
// the same port, for tests in which the bus restarts mid-run.
//
// Tests use RedisT and NATST, which skip with a loud message when the
// binary is missing (and fail when CI=true) and kill the engine when the
// test ends. Commands use StartRedis and StartNATS.
package enginetest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long Start and Restart wait for an engine to
// answer.
const StartTimeout = 10 * time.Second

// kind is what differs between the two engines.
type kind struct {
	name     string   // "redis-server"
	binaries []string // where to look for it
	scheme   string   // of Engine.URL
	install  string   // how to install it
	args     func(port int, dir string) []string
	ready    func(conn net.Conn) error // answers when the engine serves on conn
}

var redis = kind{
	name:     "redis-server",
	binaries: []string{"redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server"},
	scheme:   "redis",
	install:  "apt-get install redis-server",
	args: func(port int, dir string) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--daemonize", "no"}
	},
	ready: func(conn net.Conn) error {
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "+PONG\r\n" {
			return fmt.Errorf("PING answered %q", line)
		}
		return nil
	},
}

var nats = kind{
	name:     "nats-server",
	binaries: []string{"nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"},
	scheme:   "nats",
	install:  "apt-get install nats-server",
	args: func(port int, dir string) []string {
		return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}
	},
	ready: func(conn net.Conn) error {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "INFO ") {
			return fmt.Errorf("the server greeted with %q", line)
		}
		return nil
	},
}

// natsJetStream is nats with JetStream on, storing in the engine's
// directory: a restarted engine finds what JetStream stored before.
var natsJetStream = func() kind {
	k := nats
	k.args = func(port int, dir string) []string {
		return append(nats.args(port, dir), "-js", "-sd", filepath.Join(dir, "jetstream"))
	}
	return k
}()

// binary returns the path of k's binary, or an error saying how to install
// it.
func (k kind) binary() (string, error) {
	for _, name := range k.binaries {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("enginetest: %s not found; %s (scripts/setup.sh) installs it", k.name, k.install)
}

// require returns the path of k's binary. Without one, t skips with a loud
// message, or fails when CI=true.
func (k kind) require(t testing.TB) string {
	t.Helper()
	path, err := k.binary()
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skipf("SKIP: %s not found, so the tests against a real %s did not run; %s (they are required in CI)", k.name, k.name, k.install)
	return ""
}

// RedisBinary returns the path of redis-server, or an error saying how to
// install it.
func RedisBinary() (string, error) { return redis.binary() }

// NATSBinary returns the path of nats-server, or an error saying how to
// install it.
func NATSBinary() (string, error) { return nats.binary() }

// RequireRedis returns the path of redis-server. Without one, the test
// skips with a loud message, or fails when CI=true.
func RequireRedis(t testing.TB) string { t.Helper(); return redis.require(t) }

// RequireNATS returns the path of nats-server. Without one, the test skips
// with a loud message, or fails when CI=true.
func RequireNATS(t testing.TB) string { t.Helper(); return nats.require(t) }

// Engine is a redis-server or nats-server run by this package. Stop, Kill
// and Restart may be called from any goroutine.
type Engine struct {
	// Addr is the 127.0.0.1:port the engine listens on, the same across
	// restarts.
	Addr string

	kind kind
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd  // guarded by mu; nil while stopped
	exit chan error // guarded by mu; receives cmd's end
	out  *output    // guarded by mu; cmd's output
}

// output collects a process's output; it may be read while written.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// StartRedis runs redis-server on a free loopback port with dir as its
// working directory (nothing is saved there: no RDB, no AOF).
func StartRedis(dir string) (*Engine, error) { return start(redis, dir) }

// StartNATS runs nats-server on a free loopback port with dir as its
// working directory (no JetStream, nothing stored).
func StartNATS(dir string) (*Engine, error) { return start(nats, dir) }

// StartNATSJetStream runs nats-server with JetStream on a free loopback
// port, storing in dir: unlike the other engines, a Restart finds what
// JetStream stored before the engine stopped or was killed.
func StartNATSJetStream(dir string) (*Engine, error) { return start(natsJetStream, dir) }

// RedisT is StartRedis for a test: it skips or fails as RequireRedis does
// without the binary, fails the test on any other error, and kills the
// engine when the test ends.
func RedisT(t testing.TB) *Engine { t.Helper(); return startT(t, redis) }

// NATST is StartNATS for a test: it skips or fails as RequireNATS does
// without the binary, fails the test on any other error, and kills the
// engine when the test ends.
func NATST(t testing.TB) *Engine { t.Helper(); return startT(t, nats) }

// NATSJetStreamT is StartNATSJetStream for a test, as NATST is StartNATS.
func NATSJetStreamT(t testing.TB) *Engine { t.Helper(); return startT(t, natsJetStream) }

func startT(t testing.TB, k kind) *Engine {
	t.Helper()
	k.require(t)
	e, err := start(k, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Kill)
	return e
}

func start(k kind, dir string) (*Engine, error) {
	bin, err := k.binary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	e := &Engine{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), kind: k, bin: bin, dir: dir, port: port}
	if err := e.Restart(); err != nil {
		return nil, err
	}
	return e, nil
}

// freePort returns a loopback port that nothing listened on a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// URL returns the engine's address as a client's URL:
// "redis://127.0.0.1:port" or "nats://127.0.0.1:port".
func (e *Engine) URL() string { return e.kind.scheme + "://" + e.Addr }

// Restart starts a stopped or killed engine again on the same port, empty
// (nothing was persisted; JetStream's store excepted), and waits until it answers. Restarting a running
// engine returns an error.
func (e *Engine) Restart() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd != nil {
		return fmt.Errorf("enginetest: %s is running", e.kind.name)
	}
	cmd := exec.Command(e.bin, e.kind.args(e.port, e.dir)...)
	cmd.Dir = e.dir
	cmd.SysProcAttr = procAttr()
	out := new(output)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	deadline := time.Now().Add(StartTimeout)
	for {
		err := e.probe(deadline)
		if err == nil {
			e.cmd, e.exit, e.out = cmd, exit, out
			return nil
		}
		select {
		case err := <-exit:
			return fmt.Errorf("enginetest: %s exited: %v\n%s", e.kind.name, err, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exit
			return fmt.Errorf("enginetest: %s did not answer on %s within %v: %v\n%s", e.kind.name, e.Addr, StartTimeout, err, out)
		}
	}
}

// probe connects to the engine and checks that it serves.
func (e *Engine) probe(deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", e.Addr, time.Until(deadline))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	return e.kind.ready(conn)
}

// Stop ends the engine with SIGTERM (it closes its connections) and waits
// for it to exit; after 5 s it kills it. Stopping a stopped engine does
// nothing.
func (e *Engine) Stop() { e.end(syscall.SIGTERM) }

// Kill ends the engine with SIGKILL, as a crash would, and waits for it to
// exit. Killing a stopped engine does nothing.
func (e *Engine) Kill() { e.end(syscall.SIGKILL) }

func (e *Engine) end(sig syscall.Signal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(sig)
	select {
	case <-e.exit:
	case <-time.After(5 * time.Second):
		e.cmd.Process.Kill()
		<-e.exit
	}
	e.cmd = nil
}

// Output returns what the engine has written to stdout and stderr since it
// last started.
func (e *Engine) Output() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.out == nil {
		return ""
	}
	return e.out.String()
}
