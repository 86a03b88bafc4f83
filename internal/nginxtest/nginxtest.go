// Package nginxtest runs a real nginx in front of Tether servers, with the
// configuration README.md recommends or a variant of it, on a free loopback
// port. Tests use it through Require and ReadmeConfig; commands that start
// servers for the browser tests use Binary and Start.
package nginxtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// README's listen and upstream lines, which Start replaces.
const (
	readmeListen   = "listen 443 ssl;"
	readmeUpstream = "server 127.0.0.1:8080;"
	// readmeAccessLog is the path of the README's access log, which
	// becomes Nginx.AccessLog.
	readmeAccessLog = "/var/log/nginx/tether.access.log"
)

// ErrNotFound is returned by Binary when no nginx is installed.
var ErrNotFound = errors.New("nginxtest: nginx not found; scripts/setup.sh installs it (apt-get install nginx)")

// Binary returns the path of the nginx binary.
func Binary() (string, error) {
	for _, name := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", ErrNotFound
}

// Require returns the path of the nginx binary. Without one, the test
// skips with a loud message, or fails when CI=true.
func Require(t testing.TB) string {
	t.Helper()
	path, err := Binary()
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip("SKIPPED: nginx not found, so the tests behind a real nginx did not run; scripts/setup.sh installs it (they are required in CI)")
	return ""
}

// ReadmeConfig returns the ```nginx block of the README at path: the
// configuration the tests run, so that they keep the README true.
func ReadmeConfig(path string) (string, error) {
	readme, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(readme), "```nginx\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		return "", fmt.Errorf("nginxtest: %s has no ```nginx block", path)
	}
	return block, nil
}

// Variant returns conf with each key of replace replaced by its value. It
// fails when conf lacks a key: a variant of a configuration that changed
// under it must not silently test something else.
func Variant(conf string, replace map[string]string) (string, error) {
	for old, repl := range replace {
		if !strings.Contains(conf, old) {
			return "", fmt.Errorf("nginxtest: the nginx configuration has no %q", old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	return conf, nil
}

// Nginx is a running nginx. Stop and Restart may be called from any
// goroutine, one at a time.
type Nginx struct {
	// Addr is the host:port nginx listens on, the same across restarts.
	Addr string
	// AccessLog is the file the README's access log goes to (in dir).
	AccessLog string

	bin, dir, confPath string

	mu   sync.Mutex
	cmd  *exec.Cmd     // guarded by mu; nil while stopped
	exit chan error    // guarded by mu; receives cmd's end
	out  *bytes.Buffer // guarded by mu; cmd's output
}

// Start runs nginx with the http-level configuration conf, in which the
// README's listen line becomes addr (a loopback host:port; port 0 picks a
// free one) and its upstream server line one server line per backend
// (host:port): with several, nginx sends each request to the next, round
// robin. dir holds nginx's files and logs.
func Start(conf, addr string, backends []string, dir string) (*Nginx, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if host, port, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("nginxtest: listen address %q: want a loopback host:port", addr)
	} else if port == "0" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	servers := make([]string, len(backends))
	for i, b := range backends {
		servers[i] = "server " + b + ";"
	}
	conf, err = Variant(conf, map[string]string{
		readmeListen:   "listen " + addr + ";",
		readmeUpstream: strings.Join(servers, "\n    "),
	})
	if err != nil {
		return nil, err
	}
	accessLog := filepath.Join(dir, "access.log")
	conf = strings.ReplaceAll(conf, readmeAccessLog, accessLog)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	full := fmt.Sprintf(`%s
daemon off;
master_process off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
%[3]s
}
`, user, dir, conf)
	n := &Nginx{Addr: addr, AccessLog: accessLog, bin: bin, dir: dir, confPath: filepath.Join(dir, "nginx.conf")}
	if err := os.WriteFile(n.confPath, []byte(full), 0o644); err != nil {
		return nil, err
	}
	if err := n.start(); err != nil {
		return nil, err
	}
	return n, nil
}

// start runs nginx and waits until it accepts connections.
func (n *Nginx) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return errors.New("nginxtest: nginx is running")
	}
	cmd := exec.Command(n.bin, "-p", n.dir, "-c", n.confPath, "-e", filepath.Join(n.dir, "error.log"))
	cmd.SysProcAttr = procAttr()
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", n.Addr); err == nil {
			c.Close()
			n.cmd, n.exit, n.out = cmd, exit, out
			return nil
		}
		select {
		case err := <-exit:
			log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			return fmt.Errorf("nginxtest: nginx exited: %v\n%s%s", err, out, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exit
			return errors.New("nginxtest: nginx did not start listening within 10s")
		}
	}
}

// Stop ends nginx at once (SIGTERM: every connection through it is cut)
// and waits for it to exit. Stopping a stopped nginx does nothing.
func (n *Nginx) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exit:
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		<-n.exit
	}
	n.cmd = nil
}

// Restart starts a stopped nginx again on the same address, with the same
// configuration.
func (n *Nginx) Restart() error { return n.start() }

// Outage stops nginx for d, then starts it again: clients see connections
// cut, then refused, then accepted.
func (n *Nginx) Outage(d time.Duration) error {
	n.Stop()
	time.Sleep(d)
	return n.Restart()
}

// StartT is Start for a test: it skips or fails as Require does without
// nginx, fails the test on any other error, and stops nginx when the test
// ends.
func StartT(t testing.TB, conf string, backends ...string) *Nginx {
	t.Helper()
	Require(t)
	n, err := Start(conf, "127.0.0.1:0", backends, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}
