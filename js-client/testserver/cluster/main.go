// Command cluster runs the cluster that the Chromium suite in
// js-client/test/cluster drives: a bus engine (redis-server or nats-server)
// on a free loopback port, three Tether echo nodes, each a process of its
// own (this command run with -node), and nginx with README.md's
// configuration in front, doing round robin over the nodes with no
// stickiness. It prints one line per node, "node NAME ID ADDR" (ID is the
// prefix of the ids of the sessions the node holds), then
// "listening http://ADDR/" once nginx accepts connections: ADDR/ serves a
// page that loads the client from ADDR/rt/tether.js, and ADDR/rt/ is the
// Tether prefix, served by every node. With -hosts N, nginx also listens on
// 127.0.0.2 .. 127.0.0.N at ADDR's port: a browser keeps at most 6 HTTP/1.1
// connections per host, which the streams and polls of a few sessions fill,
// so that tabs on hosts of their own do not wait for each other's.
//
// Each node echoes every message, and answers the text "stream N" with the
// text messages "1" .. "N" (internal/hostile's Handle).
//
// With -state, the nodes are durable (cluster.NodeOptions.State): the
// sessions' state is kept in Redis (the bus's; on NATS, a redis-server of
// its own), leases last -lease-ttl, and a session whose node dies is taken
// over by another. The nodes then echo with internal/hostile's Callbacks,
// whose answer to a message is stored with its receipt.
//
// It reads commands from its standard input, one a line:
//
//	kill ID     kill (SIGKILL) the node whose id is ID, or that holds the
//	            session whose id is ID, and print "killed " and the node's
//	            id; with -state, then start it again on its address (a new
//	            id: its "node" line is printed again)
//	owner ID    print "owner ID NODE": the id of the node that owns the
//	            session ID in the state (-state), or "none" if no node
//	            does at the time (its owner died and none took it over yet)
//
// and stops when its standard input closes or on SIGINT or SIGTERM.
//
//	cluster -node -bus-url redis://127.0.0.1:6400 -listen 127.0.0.1:0 -name n1 [-state redis://… -lease-ttl 1s]
//
// runs one node, and prints "node NAME ID ADDR" once it accepts connections.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/enginetest"
	"github.com/tetherkit/tether/internal/hostile"
	"github.com/tetherkit/tether/internal/nginxtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback `address` nginx listens on (port 0: a free one)")
	bus := flag.String("bus", "redis", "the bus: `redis` or nats (its engine is started on a free loopback port)")
	readme := flag.String("readme", "README.md", "`path` of README.md, whose nginx block configures nginx")
	nodes := flag.Int("nodes", 3, "how many nodes to start")
	hosts := flag.Int("hosts", 1, "nginx listens on 127.0.0.1 .. 127.0.0.`N`, at the same port")
	node := flag.Bool("node", false, "run one node (what the command starts its nodes with)")
	busURL := flag.String("bus-url", "", "node mode: the bus's `URL`, redis://host:port or nats://host:port")
	listen := flag.String("listen", "127.0.0.1:0", "node mode: the loopback `address` the node listens on")
	name := flag.String("name", "node", "node mode: the node's `name` in logs")
	state := flag.String("state", "", "durable nodes: `true`, or in node mode the URL of the Redis that keeps the sessions' state")
	leaseTTL := flag.Duration("lease-ttl", time.Second, "durable nodes: how long a session's lease lasts after its owner's last write")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var err error
	if *node {
		err = runNode(ctx, *busURL, *listen, *name, *state, *leaseTTL, logger)
	} else {
		err = runCluster(ctx, stop, *bus, *addr, *readme, *nodes, *hosts, *state == "true", *leaseTTL)
	}
	if err != nil {
		log.Fatal("cluster: ", err)
	}
}

// runCluster starts the engine, the nodes and nginx, and serves the
// commands of standard input until ctx ends or standard input closes
// (which calls stop). Durable, the nodes keep their sessions' state in Redis
// with leases of leaseTTL.
func runCluster(ctx context.Context, stop func(), bus, addr, readme string, n, hosts int, durable bool, leaseTTL time.Duration) error {
	conf, err := hostile.Setup{}.Config(readme)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tether-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var eng *enginetest.Engine
	switch bus {
	case "redis":
		eng, err = enginetest.StartRedis(dir)
	case "nats":
		eng, err = enginetest.StartNATS(dir)
	default:
		err = fmt.Errorf("-bus %q: want redis or nats", bus)
	}
	if err != nil {
		return err
	}
	defer eng.Stop()
	var args []string // the nodes' flags besides the bus's
	var store *redisstate.Store
	if durable {
		st := eng
		if bus != "redis" {
			if st, err = enginetest.StartRedis(dir); err != nil {
				return err
			}
			defer st.Stop()
		}
		args = []string{"-state", st.URL(), "-lease-ttl", leaseTTL.String()}
		rdb := redis.NewClient(&redis.Options{Addr: st.Addr})
		defer rdb.Close()
		if store, err = redisstate.New(rdb, &redisstate.Options{LeaseTTL: leaseTTL}); err != nil {
			return err
		}
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	var procsMu sync.Mutex // kill replaces the nodes it starts again
	var procs []*nodeProc
	defer func() {
		procsMu.Lock()
		defer procsMu.Unlock()
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(p.stop)
		}
		wg.Wait()
	}()
	var backends []string
	for i := range n {
		p, err := startNode(self, eng.URL(), fmt.Sprintf("n%d", i+1), append([]string{"-listen", "127.0.0.1:0"}, args...))
		if err != nil {
			return err
		}
		procs = append(procs, p)
		backends = append(backends, p.addr)
		fmt.Printf("node %s %s %s\n", p.name, p.id, p.addr)
	}
	ngx, err := startNginx(conf, addr, hosts, backends, dir)
	if err != nil {
		return err
	}
	defer ngx.Stop()
	fmt.Printf("listening http://%s/\n", ngx.Addr)

	go func() {
		defer stop()
		for in := bufio.NewScanner(os.Stdin); in.Scan(); {
			cmd, id, _ := strings.Cut(in.Text(), " ")
			switch cmd {
			case "kill":
				procsMu.Lock()
				kill(procs, id, self, eng.URL(), args)
				procsMu.Unlock()
			case "owner":
				owner := "none"
				if store == nil {
					log.Printf("cluster: owner %s: the nodes are not durable (-state)", id)
				} else if o, err := store.Owner(context.Background(), id); err != nil {
					log.Printf("cluster: owner %s: %v", id, err)
				} else if o != "" {
					owner = o
				}
				fmt.Printf("owner %s %s\n", id, owner)
			default:
				log.Printf("cluster: unknown command %q", in.Text())
			}
		}
	}()
	<-ctx.Done()
	return nil
}

// kill kills the node whose id is id, or that holds the session id (by its
// prefix), and prints "killed " and its id. With args (durable nodes), it
// then starts it again, on its address, with them, and prints its node
// line.
func kill(procs []*nodeProc, id, self, busURL string, args []string) {
	if owner, ok := cluster.OwnerOf(id); ok {
		id = owner
	}
	for i, p := range procs {
		if p.id != id {
			continue
		}
		p.kill()
		fmt.Printf("killed %s\n", id)
		if args != nil {
			np, err := startNode(self, busURL, p.name, append([]string{"-listen", p.addr}, args...))
			if err != nil {
				log.Printf("cluster: starting %s again: %v", p.name, err)
				return
			}
			procs[i] = np
			fmt.Printf("node %s %s %s\n", np.name, np.id, np.addr)
		}
		return
	}
	log.Printf("cluster: kill %s: no such node", id)
}

// startNginx runs nginx with conf in dir, round robin over backends, on
// addr and, with hosts > 1, on 127.0.0.2 .. 127.0.0.hosts at addr's port
// too. With port 0 it picks a port free on every host, and picks again if
// another process took it before nginx could (nginx then fails, or does not
// answer on every host).
func startNginx(conf, addr string, hosts int, backends []string, dir string) (*nginxtest.Nginx, error) {
	if hosts < 1 || hosts > 254 {
		return nil, fmt.Errorf("-hosts %d: want 1 to 254", hosts)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if hosts > 1 && host != "127.0.0.1" {
		return nil, fmt.Errorf("-addr %q: -hosts needs 127.0.0.1", addr)
	}
	for attempt := 1; ; attempt++ {
		p := port
		if p == "0" {
			if p, err = freePort(hosts); err != nil {
				return nil, err
			}
		}
		addrs := []string{net.JoinHostPort(host, p)}
		lines := []string{readmeListen}
		for i := 2; i <= hosts; i++ {
			addrs = append(addrs, fmt.Sprintf("127.0.0.%d:%s", i, p))
			lines = append(lines, "listen "+addrs[i-1]+";")
		}
		c, err := nginxtest.Variant(conf, map[string]string{readmeListen: strings.Join(lines, "\n    ")})
		if err != nil {
			return nil, err
		}
		ngx, err := nginxtest.Start(c, addrs[0], backends, dir)
		if err == nil {
			if err = dialAll(addrs); err == nil {
				return ngx, nil
			}
			ngx.Stop()
		}
		if port != "0" || attempt == 5 {
			return nil, err
		}
	}
}

// freePort returns a port that is free on 127.0.0.1 .. 127.0.0.hosts.
func freePort(hosts int) (string, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		lns := []net.Listener{ln}
		for i := 2; i <= hosts && err == nil; i++ {
			if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%s", i, port)); err == nil {
				lns = append(lns, ln)
			}
		}
		for _, ln := range lns {
			ln.Close()
		}
		if err == nil {
			return port, nil
		}
	}
	return "", errors.New("no port free on every host")
}

// dialAll returns an error unless every address accepts a connection.
func dialAll(addrs []string) error {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			return fmt.Errorf("nginx does not answer on %s: %w", a, err)
		}
		c.Close()
	}
	return nil
}

// readmeListen is README's listen line, which nginxtest.Start replaces.
const readmeListen = "listen 443 ssl;"

// nodeProc is a node's process.
type nodeProc struct {
	name, id, addr string
	cmd            *exec.Cmd
	exited         chan struct{}
}

// startNode runs self in node mode on the bus at url, with args added to
// its flags, and waits for its "node" line.
func startNode(self, url, name string, args []string) (*nodeProc, error) {
	cmd := exec.Command(self, append([]string{"-node", "-bus-url", url, "-name", name}, args...)...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the command
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &nodeProc{name: name, cmd: cmd, exited: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(p.exited)
	}()
	select {
	case l := <-line:
		if _, err := fmt.Sscanf(l, "node "+name+" %s %s", &p.id, &p.addr); err != nil {
			p.kill()
			return nil, fmt.Errorf("node %s printed %q: %w", name, l, err)
		}
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("node %s exited before it was ready", name)
	case <-time.After(20 * time.Second):
		p.kill()
		return nil, fmt.Errorf("node %s not ready within 20s", name)
	}
}

// kill ends the node with SIGKILL, as a crash would, and waits for it.
func (p *nodeProc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// stop asks the node to shut down (SIGTERM), and kills it after 10 s.
func (p *nodeProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// errNoBusURL is returned by runNode without -bus-url.
var errNoBusURL = errors.New("-node needs -bus-url")
