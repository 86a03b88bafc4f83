// Package bufferproxy is an HTTP reverse proxy for tests that buffers
// response bodies the way nginx does with proxy_buffering on: a streaming
// response (server-sent events, multipart, a long poll's chunked answer)
// reaches the client only when it is complete, or in blocks of
// Options.FlushBytes. Transports that rely on flushing must detect it and
// fall back; this proxy lets the tests prove they do.
//
// It can also strip the Upgrade header, as proxies without WebSocket
// support do. It listens on 127.0.0.1 only, and Close waits for every
// request it is serving.
package bufferproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// Options configures a Proxy. The zero value holds each response body until
// it is complete and passes WebSocket upgrades through.
type Options struct {
	// FlushBytes, when positive, releases the held body each time this many
	// bytes have gathered, like nginx's proxy buffers filling up; the rest
	// of the body is held again. Zero holds the whole body, however large,
	// until the target ends it.
	FlushBytes int

	// HoldHeaders also holds the status line and headers until the first
	// block of the body is released. By default they go to the client at
	// once, and only the body waits.
	HoldHeaders bool

	// StripUpgrade removes the Upgrade and Connection headers from requests,
	// so a WebSocket handshake reaches the target as a plain GET and fails.
	StripUpgrade bool

	// ErrorLog receives the proxy's errors. The default discards them.
	ErrorLog *log.Logger
}

// Proxy is a running buffering reverse proxy. All methods may be called
// concurrently.
type Proxy struct {
	opts      Options
	ln        net.Listener
	srv       *http.Server
	transport *http.Transport
	rp        *httputil.ReverseProxy
	cancel    context.CancelFunc
	inflight  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	requests, released atomic.Int64
}

// New starts a proxy on a free port of 127.0.0.1 for target, an absolute
// http URL such as "http://127.0.0.1:8080" (a path in it prefixes every
// request's). opts may be nil for defaults; the proxy keeps a copy.
func New(target string, opts *Options) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("bufferproxy: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("bufferproxy: target %q is not an absolute http URL", target)
	}
	p := &Proxy{}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.FlushBytes < 0 {
		return nil, errors.New("bufferproxy: negative FlushBytes")
	}
	if p.opts.ErrorLog == nil {
		p.opts.ErrorLog = log.New(io.Discard, "", 0)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bufferproxy: %w", err)
	}
	p.ln = ln
	// A transport of its own: no proxy from the environment, and idle
	// connections that Close can shut.
	p.transport = &http.Transport{}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		},
		Transport:      p.transport,
		FlushInterval:  -1, // forward each released block at once
		ModifyResponse: p.hold,
		ErrorLog:       p.opts.ErrorLog,
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.srv = &http.Server{
		Handler:     http.HandlerFunc(p.serveHTTP),
		ErrorLog:    p.opts.ErrorLog,
		BaseContext: func(net.Listener) context.Context { return ctx },
		// Count connections from accept to close, so that Close also waits
		// for a handler that a connection is about to start. A hijacked
		// connection (a proxied WebSocket) is counted by its handler.
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				p.inflight.Add(1)
			case http.StateClosed, http.StateHijacked:
				p.inflight.Done()
			}
		},
	}
	p.inflight.Add(1)
	go func() {
		defer p.inflight.Done()
		p.srv.Serve(ln)
	}()
	return p, nil
}

// URL returns the proxy's base URL, "http://127.0.0.1:port".
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Addr returns the address the proxy listens on, as host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Stats counts requests proxied and body blocks released to clients.
type Stats struct {
	Requests int64 // requests received
	Released int64 // blocks of held body bytes released to clients
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{Requests: p.requests.Load(), Released: p.released.Load()}
}

// Close closes the listener and every connection, cancels the requests in
// flight (and so their requests to the target), and waits for them to end.
// Later calls return the first call's result.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		if err := p.srv.Close(); err != nil {
			p.closeErr = fmt.Errorf("bufferproxy: %w", err)
		}
		p.inflight.Wait()
		p.transport.CloseIdleConnections()
	})
	return p.closeErr
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.inflight.Add(1)
	defer p.inflight.Done()
	p.requests.Add(1)
	if p.opts.StripUpgrade && r.Header.Get("Upgrade") != "" {
		r = r.Clone(r.Context())
		r.Header.Del("Upgrade")
		r.Header.Del("Connection")
	}
	p.rp.ServeHTTP(w, r)
}

// hold replaces the response body with one that releases it in blocks.
func (p *Proxy) hold(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	h := &heldBody{src: res.Body, limit: p.opts.FlushBytes, released: &p.released}
	res.Body = h
	if p.opts.HoldHeaders {
		h.fill()
	}
	return nil
}

// heldBody reads its source until limit bytes have gathered (or to the end
// when limit is 0) before its Read returns any of them. It is used by one
// goroutine at a time.
type heldBody struct {
	src      io.ReadCloser
	limit    int
	released *atomic.Int64
	buf      bytes.Buffer
	err      error // the source's error, returned once buf is drained
}

func (h *heldBody) Read(p []byte) (int, error) {
	if h.buf.Len() == 0 && h.err == nil {
		h.fill()
	}
	if h.buf.Len() > 0 {
		n, _ := h.buf.Read(p)
		return n, nil
	}
	return 0, h.err
}

// fill gathers the next block unless one is already waiting.
func (h *heldBody) fill() {
	if h.buf.Len() > 0 || h.err != nil {
		return
	}
	chunk := make([]byte, 32<<10)
	for h.err == nil && (h.limit == 0 || h.buf.Len() < h.limit) {
		want := len(chunk)
		if h.limit > 0 {
			want = min(want, h.limit-h.buf.Len())
		}
		var n int
		n, h.err = h.src.Read(chunk[:want])
		h.buf.Write(chunk[:n])
	}
	if h.buf.Len() > 0 {
		h.released.Add(1)
	}
}

func (h *heldBody) Close() error { return h.src.Close() }
