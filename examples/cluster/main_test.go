package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"

	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/internal/nginxtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait of the tests.
const testTimeout = 60 * time.Second

// urlLine is the command's last line: nginx's URL and the engine's.
var urlLine = regexp.MustCompile(`^the chat: (http://\S+/) \(\d+ nodes over \w+://(\S+),`)

// started is the command running, as its output shows it.
type started struct {
	cmd    *exec.Cmd
	url    string              // nginx's, through which the chat is served
	engine string              // the bus engine's host:port
	nodes  []clustertest.Ready // what it printed of each node
	exit   chan error
}

// startCommand builds the command and runs it with args, and waits for the
// line with the URL.
func startCommand(t *testing.T, args ...string) *started {
	t.Helper()
	nginxtest.Require(t)
	switch {
	case len(args) > 1 && args[1] == "nats":
		enginetest.RequireNATS(t)
	default:
		enginetest.RequireRedis(t)
	}
	bin := filepath.Join(t.TempDir(), "cluster")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-readme", "../../README.md"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &started{cmd: cmd, exit: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		for range lines {
		}
	})
	deadline := time.After(testTimeout)
	for s.url == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the command exited before it printed its URL: %v", <-s.exit)
			}
			t.Log(line)
			if m := urlLine.FindStringSubmatch(line); m != nil {
				s.url, s.engine = m[1], m[2]
			} else if r, err := clustertest.ParseReady(line); err == nil {
				s.nodes = append(s.nodes, r)
			}
		case <-deadline:
			t.Fatalf("no URL printed within %v", testTimeout)
		}
	}
	go func() {
		for line := range lines {
			t.Log(line)
		}
	}()
	return s
}

// get returns the body of a GET of url, failing the test unless it is
// answered 200.
func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: testTimeout}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// gone waits, bounded, until every process in pids has exited and nothing
// listens on addrs any more.
func gone(t *testing.T, pids []int, addrs ...string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs %v after the command ended", pid, testTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts connections %v after the command ended", addr, testTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestInterrupt: the command serves the chat's page and both clients
// through nginx, and SIGINT (Ctrl-C) stops everything it started.
func TestInterrupt(t *testing.T) {
	for _, bus := range []string{"redis", "nats"} {
		t.Run(bus, func(t *testing.T) {
			s := startCommand(t, "-bus", bus)
			if len(s.nodes) != 3 {
				t.Fatalf("%d nodes printed, want 3", len(s.nodes))
			}
			if body := get(t, s.url); !strings.Contains(body, "Tether chat") {
				t.Errorf("GET %s: no chat page", s.url)
			}
			for _, path := range []string{"chat/rt/tether.js", "rt/tether.js"} {
				if body := get(t, s.url+path); !strings.Contains(body, "Tether") {
					t.Errorf("GET %s: no client", s.url+path)
				}
			}
			chatAcrossNodes(t, s.url+"chat/rt/")
			s.cmd.Process.Signal(os.Interrupt)
			select {
			case err := <-s.exit:
				if err != nil {
					t.Errorf("the command ended with %v after SIGINT, want success", err)
				}
			case <-time.After(testTimeout):
				t.Fatalf("the command still runs %v after SIGINT", testTimeout)
			}
			var pids []int
			for _, n := range s.nodes {
				pids = append(pids, n.PID)
			}
			gone(t, pids, strings.TrimSuffix(strings.TrimPrefix(s.url, "http://"), "/"), s.engine)
		})
	}
}

// TestKilled: a command killed with SIGKILL, which can clean nothing up,
// leaves no process behind: the kernel kills its children with it.
func TestKilled(t *testing.T) {
	s := startCommand(t)
	s.cmd.Process.Kill()
	if err := <-s.exit; !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("the command ended with %v, want killed", err)
	}
	var pids []int
	for _, n := range s.nodes {
		pids = append(pids, n.PID)
	}
	gone(t, pids, strings.TrimSuffix(strings.TrimPrefix(s.url, "http://"), "/"), s.engine)
}

// chatter is one chat client.
type chatter struct {
	t *testing.T
	c *client.Session
}

func joinChat(t *testing.T, ctx context.Context, url, nick string) *chatter {
	t.Helper()
	c, err := client.Dial(ctx, url, &client.Options{Header: http.Header{"X-Nick": {nick}}})
	if err != nil {
		t.Fatalf("%s: Dial: %v", nick, err)
	}
	t.Cleanup(func() { c.Close(wire.StatusNormalClosure, "") })
	u := &chatter{t: t, c: c}
	u.send(ctx, `{"type":"join","room":"go"}`)
	u.next(ctx, "joined")
	return u
}

func (u *chatter) send(ctx context.Context, cmd string) {
	u.t.Helper()
	if err := u.c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(cmd)}); err != nil {
		u.t.Fatalf("Send: %v", err)
	}
}

// next returns the next event of type typ, skipping the others.
func (u *chatter) next(ctx context.Context, typ string) map[string]any {
	u.t.Helper()
	for {
		m, err := u.c.Recv(ctx)
		if err != nil {
			u.t.Fatalf("waiting for %q: %v", typ, err)
		}
		var e map[string]any
		if err := json.Unmarshal(m.Data, &e); err != nil {
			u.t.Fatalf("not an event: %q", m.Data)
		}
		if e["type"] == typ {
			return e
		}
	}
}

// chatAcrossNodes: two people whose sessions two different nodes hold
// join a room through nginx; what one says, the other hears.
func chatAcrossNodes(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ada := joinChat(t, ctx, url, "ada")
	owner := func(u *chatter) string { id, _, _ := strings.Cut(u.c.ID(), "."); return id }
	var bob *chatter
	for range 6 { // nginx's round robin decides which node a negotiate reaches
		if bob = joinChat(t, ctx, url, "bob"); owner(bob) != owner(ada) {
			break
		}
		bob.c.Close(wire.StatusNormalClosure, "")
	}
	if owner(bob) == owner(ada) {
		t.Fatalf("six sessions through nginx all held by the node of %s", ada.c.ID())
	}
	bob.send(ctx, `{"type":"say","text":"hi ada"}`)
	if e := ada.next(ctx, "message"); e["nick"] != "bob" || e["text"] != "hi ada" {
		t.Errorf("ada got %v, want bob's hi", e)
	}
}
