// Package hostile puts real nginx, configured as the networks users meet,
// in front of Tether echo servers: the setups of issue 11, shared by the Go
// client's tests in this package and by the Chromium suite
// (js-client/test/hostile), which starts them through the command in
// hostileserver/.
package hostile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/nginxtest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Setup is one nginx configuration: README's block with replacements, or
// one of its own, in front of one or more independent Tether servers.
type Setup struct {
	Name string
	Doc  string
	// Conf, when set, is the configuration in place of README's block: one
	// an operator writes without reading README. It has README's listen and
	// upstream server lines, which nginxtest.Start replaces.
	Conf    string
	Replace map[string]string
	Servers int // independent servers, round robin; default 1
	// RefuseWebSocket makes nginx answer WebSocket upgrades 502 from its
	// start until Env.PassWebSocket is called, as a proxy's hiccup does.
	RefuseWebSocket bool
}

// Lines of README's nginx block that the setups change.
const (
	cacheOff         = "proxy_cache off;"
	upgradeHeader    = "proxy_set_header Upgrade $http_upgrade;"
	connectionHeader = "proxy_set_header Connection $connection_upgrade;"
	bufferingOff     = "proxy_buffering off;"
	readTimeout      = "proxy_read_timeout 75s;"
	sendTimeout      = "proxy_send_timeout 75s;"
	maxBodySize      = "client_max_body_size 1m;"
	listenLine       = "listen 443 ssl;"
)

// MaxBodyBytes is the client_max_body_size of the "buffered-requests"
// setup: nginx answers a larger send body 413 itself.
const MaxBodyBytes = 16 << 10

// SlowIdleTimeout is the proxy_read_timeout of the "slowidle" setup.
const SlowIdleTimeout = 3 * time.Second

// defaultsConf is the least an operator writes: nginx's defaults, so
// HTTP/1.0 to the upstream, no Upgrade or Connection header (no
// WebSocket), buffering on (X-Accel-Buffering honoured), timeouts of 60 s,
// a new upstream connection per request, and the upstream's name as Host,
// so that a browser's Origin never matches it.
const defaultsConf = `
upstream tether {
    server 127.0.0.1:8080;
}

server {
    listen 443 ssl;

    location / {
        proxy_pass http://tether;
    }
}
`

// passHost is the line that makes browsers work through defaultsConf.
const passHost = "proxy_set_header Host $http_host;"

// keepaliveConf is the usual performance configuration: upstream
// connections kept and reused across the requests of different clients,
// with the Host line and the Upgrade lines of README.
const keepaliveConf = `
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      '';
}

upstream tether {
    server 127.0.0.1:8080;
    keepalive 16;
}

server {
    listen 443 ssl;

    location / {
        proxy_pass http://tether;
        proxy_http_version 1.1;
        ` + passHost + `
        proxy_set_header Connection "";
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
    }
}
`

// IdleTimeout is the idle timeout of the "idle" setup, below the default
// heartbeat interval (25 s).
const IdleTimeout = 5 * time.Second

// OutageTime is how long the "outage" scenario keeps nginx down.
const OutageTime = 4 * time.Second

// Setups are the networks of issue 11. "outage" runs README's configuration;
// what differs is that the scenario stops nginx for OutageTime and starts it
// again on the same port.
var Setups = []Setup{
	{Name: "plain", Doc: "README's configuration"},
	{Name: "noupgrade", Doc: "Upgrade and Connection headers dropped: WebSocket is impossible", Replace: map[string]string{
		upgradeHeader:    "",
		connectionHeader: "",
	}},
	{Name: "antivirus", Doc: "buffering on (X-Accel-Buffering ignored), gzip on every type, no upgrades, as an antivirus proxy does", Replace: map[string]string{
		bufferingOff:     "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering; gzip on; gzip_types *; gzip_min_length 1;",
		upgradeHeader:    "",
		connectionHeader: "",
	}},
	{Name: "idle", Doc: "idle timeouts of 5 s, below the 25 s heartbeat", Replace: map[string]string{
		readTimeout: "proxy_read_timeout 5s; send_timeout 5s;",
		sendTimeout: "proxy_send_timeout 5s;",
	}},
	{Name: "outage", Doc: "README's configuration, stopped for 4 s mid-session and started again on the same port"},
	{Name: "roundrobin", Doc: "round robin over two independent servers (no shared state)", Servers: 2},
	{Name: "hiccup", Doc: "README's configuration, WebSocket upgrades refused (502) until the scenario lets them through", RefuseWebSocket: true},
	{Name: "defaults", Doc: "a minimal location with nginx's defaults: HTTP/1.0 upstream, no Upgrade, buffering on, 60 s timeouts, Host the upstream's name (browsers refused: 403 origin not allowed)", Conf: defaultsConf},
	{Name: "defaults-host", Doc: "defaults, with the Host header passed", Conf: defaultsConf, Replace: map[string]string{
		"proxy_pass http://tether;": "proxy_pass http://tether; " + passHost,
	}},
	{Name: "keepalive", Doc: "upstream keepalive 16, HTTP/1.1, Host passed, Connection \"\" and README's Upgrade lines: upstream connections shared by clients", Conf: keepaliveConf},
	{Name: "buffered-requests", Doc: "request bodies buffered (1 KiB in memory), client_max_body_size 16k: larger send bodies answered 413 by nginx", Replace: map[string]string{
		maxBodySize: "client_max_body_size 16k; client_body_buffer_size 1k; proxy_request_buffering on;",
	}},
	{Name: "slowidle", Doc: "buffering on (X-Accel-Buffering honoured) and proxy_read_timeout 3s, below the heartbeat", Replace: map[string]string{
		bufferingOff: "proxy_buffering on;",
		readTimeout:  "proxy_read_timeout 3s;",
	}},
}

// refuseFile is the file, in nginx's directory, whose existence makes a
// setup with RefuseWebSocket answer WebSocket upgrades 502.
const refuseFile = "refuse-websocket"

// Page is the HTML page nginx serves at /: it loads the bundled client from
// the Tether server, through nginx, at /rt/tether.js.
const Page = `<!doctype html><meta charset="utf-8"><title>tether behind nginx</title><link rel="icon" href="data:,"><script src="/rt/tether.js"></script>`

// Config returns s's nginx configuration: its own, or README's (read from
// readme) changed for s, with a location serving Page at /.
func (s Setup) Config(readme string) (string, error) {
	conf := s.Conf
	if conf == "" {
		var err error
		if conf, err = nginxtest.ReadmeConfig(readme); err != nil {
			return "", err
		}
	}
	replace := map[string]string{
		listenLine: listenLine + "\n\n    location = / {\n        default_type text/html;\n        return 200 '" + Page + "';\n    }",
	}
	for k, v := range s.Replace {
		replace[k] = v
	}
	return nginxtest.Variant(conf, replace)
}

// Env is a setup running: nginx in front of its servers.
type Env struct {
	Setup Setup
	Nginx *nginxtest.Nginx
	// Page is the URL of Page; URL the Tether prefix, both through nginx.
	Page, URL string

	dir     string
	servers []*tether.Server
	https   []*http.Server
}

// Start runs s: its Tether echo servers (see Handle), each on a loopback
// port of its own, and nginx in front on addr (port 0: a free one), with its
// files in dir. readme is the path of README.md. logger receives the
// servers' logs (nil: none).
func Start(s Setup, readme, addr, dir string, logger *slog.Logger) (*Env, error) {
	conf, err := s.Config(readme)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if s.RefuseWebSocket {
		// Checked by nginx on every request: PassWebSocket removes the file.
		refuse := filepath.Join(dir, refuseFile)
		if err := os.WriteFile(refuse, nil, 0o644); err != nil {
			return nil, err
		}
		conf, err = nginxtest.Variant(conf, map[string]string{cacheOff: cacheOff + `
        set $refuse_websocket "";
        if (-f ` + refuse + `) { set $refuse_websocket $http_upgrade; }
        if ($refuse_websocket) { return 502; }`})
		if err != nil {
			return nil, err
		}
	}
	e := &Env{Setup: s, dir: dir}
	var backends []string
	for range max(s.Servers, 1) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.Close()
			return nil, err
		}
		srv := tether.NewServer(tether.HandlerFunc(Handle), &tether.Options{Logger: logger})
		mux := http.NewServeMux()
		mux.Handle("/rt/", srv)
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		e.servers, e.https = append(e.servers, srv), append(e.https, hs)
		backends = append(backends, ln.Addr().String())
	}
	if e.Nginx, err = nginxtest.Start(conf, addr, backends, dir); err != nil {
		e.Close()
		return nil, err
	}
	e.Page = "http://" + e.Nginx.Addr + "/"
	e.URL = e.Page + "rt/"
	return e, nil
}

// PassWebSocket makes nginx pass WebSocket upgrades from the next request
// on, in a setup with RefuseWebSocket; the connections it has passed go on.
func (e *Env) PassWebSocket() error {
	err := os.Remove(filepath.Join(e.dir, refuseFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Close stops nginx and the servers (sessions end with 1001).
func (e *Env) Close() {
	if e.Nginx != nil {
		e.Nginx.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i, srv := range e.servers {
		srv.Shutdown(ctx)
		e.https[i].Close()
	}
}

// Handle is the servers' session handler: it echoes every message, except
// the text "stream N", which it answers with the text messages "1" .. "N".
func Handle(s *session.Session) {
	ctx := s.Context()
	for {
		m, err := s.Recv(ctx)
		if err != nil {
			return
		}
		if n, ok := streamCommand(m); ok {
			for i := 1; i <= n; i++ {
				if err := s.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(strconv.Itoa(i))}); err != nil {
					return
				}
			}
			continue
		}
		if err := s.Send(ctx, m); err != nil {
			return
		}
	}
}

// Callbacks serve sessions as Handle does, with no goroutine per session:
// each message is answered in the call that delivers it, so that on a
// durable cluster node the answer is stored with the message's receipt
// (one Write), and a node killed between the two loses neither.
var Callbacks = &tether.Callbacks{Message: func(s *session.Session, m wire.Message) {
	ctx := s.Context()
	if n, ok := streamCommand(m); ok {
		for i := 1; i <= n; i++ {
			if err := s.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(strconv.Itoa(i))}); err != nil {
				return
			}
		}
		return
	}
	s.Send(ctx, m)
}}

// streamCommand parses "stream N".
func streamCommand(m wire.Message) (int, bool) {
	arg, ok := strings.CutPrefix(string(m.Data), "stream ")
	if m.Type != wire.Text || !ok {
		return 0, false
	}
	n, err := strconv.Atoi(arg)
	return n, err == nil && n > 0
}

// Lookup returns the setup called name, or an error listing the setups.
func Lookup(name string) (Setup, error) {
	names := make([]string, len(Setups))
	for i, s := range Setups {
		if s.Name == name {
			return s, nil
		}
		names[i] = s.Name
	}
	return Setup{}, fmt.Errorf("hostile: no setup %q (want one of %s)", name, strings.Join(names, ", "))
}
