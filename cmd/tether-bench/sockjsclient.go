package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	ws "github.com/gorilla/websocket"
)

// The bench speaks the SockJS protocol itself. Every transport carries the
// same frames: "o" (open), "h" (heartbeat), "a[...]" (a JSON array of
// messages) and "c[code,reason]" (close). Client messages travel as a JSON
// array of strings: in a WebSocket message, or in the body of a POST
// {session}/xhr_send for the HTTP transports. The downstream of the HTTP
// transports is {session}/xhr (one frame per POST: polling),
// {session}/xhr_streaming (a 2 KiB prelude of "h", then a frame per line)
// or {session}/eventsource ("data: <frame>" events); the streams end after
// 128 KiB and the client opens the next one. sockjs-go answers a request
// that arrives while the previous one of the same session is still
// attached with c[2010,"Another connection still open"]; the bench counts
// these and asks again.

// sockjsSessionURL returns base/sockjs/<server>/<session>.
func sockjsSessionURL(base string) string {
	var b [8]byte
	rand.Read(b[:])
	return base + sockjsPrefix + "/000/" + hex.EncodeToString(b[:])
}

// sockjsInbox queues the messages the downstream decodes.
type sockjsInbox struct {
	msgs   chan []byte
	mu     sync.Mutex
	err    error
	ended  chan struct{}
	opened chan struct{}
	once   sync.Once
	open1  sync.Once
}

func newSockJSInbox() *sockjsInbox {
	return &sockjsInbox{msgs: make(chan []byte, 4096), ended: make(chan struct{}), opened: make(chan struct{})}
}

func (in *sockjsInbox) end(err error) {
	in.once.Do(func() {
		in.mu.Lock()
		in.err = err
		in.mu.Unlock()
		close(in.ended)
	})
}

func (in *sockjsInbox) recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-in.msgs:
		return m, nil
	default:
	}
	select {
	case m := <-in.msgs:
		return m, nil
	case <-in.ended:
		in.mu.Lock()
		defer in.mu.Unlock()
		return nil, in.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// frame handles one SockJS frame. It returns errRefused for a 2010 close,
// and an error ending the session for any other close.
func (in *sockjsInbox) frame(ctx context.Context, f []byte) error {
	if len(f) == 0 {
		return nil
	}
	switch f[0] {
	case 'o':
		in.open1.Do(func() { close(in.opened) })
	case 'h':
	case 'a':
		var msgs []string
		if err := json.Unmarshal(f[1:], &msgs); err != nil {
			return fmt.Errorf("sockjs: bad frame %q: %w", f, err)
		}
		for _, m := range msgs {
			select {
			case in.msgs <- []byte(m):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	case 'c':
		var c []any
		json.Unmarshal(f[1:], &c)
		if len(c) > 0 {
			if code, ok := c[0].(float64); ok && code == 2010 {
				return errRefused
			}
		}
		return fmt.Errorf("sockjs: closed: %s", f[1:])
	default:
		return fmt.Errorf("sockjs: unknown frame %q", f)
	}
	return nil
}

var errRefused = errors.New("sockjs: refused with 2010")

// sockjsWS is a SockJS session over its websocket transport.
type sockjsWS struct {
	c      *ws.Conn
	in     *sockjsInbox
	cancel context.CancelFunc
	wmu    sync.Mutex
}

func dialSockJSWebSocket(ctx context.Context, base string, env *dialEnv) (conn, error) {
	u := "ws" + strings.TrimPrefix(sockjsSessionURL(base), "http") + "/websocket"
	c, resp, err := env.wsd.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	s := &sockjsWS{c: c, in: newSockJSInbox(), cancel: cancel}
	go func() {
		for {
			_, p, err := c.ReadMessage()
			if err == nil {
				err = s.in.frame(rctx, p)
			}
			if err != nil {
				s.in.end(err)
				return
			}
		}
	}()
	select {
	case <-s.in.opened:
		return s, nil
	case <-s.in.ended:
		c.Close()
		return nil, s.in.err
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

func (s *sockjsWS) Send(ctx context.Context, p []byte) error {
	body, _ := json.Marshal([]string{string(p)})
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.c.WriteMessage(ws.TextMessage, body)
}

func (s *sockjsWS) Recv(ctx context.Context) ([]byte, error) { return s.in.recv(ctx) }

func (s *sockjsWS) Close() {
	s.cancel()
	s.wmu.Lock()
	s.c.WriteControl(ws.CloseMessage, ws.FormatCloseMessage(ws.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.wmu.Unlock()
	s.c.Close()
}

// sockjsHTTP is a SockJS session over one of its HTTP transports: "xhr"
// (polling), "xhr_streaming" or "eventsource", with xhr_send upstream.
type sockjsHTTP struct {
	url    string
	kind   string
	env    *dialEnv
	in     *sockjsInbox
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func dialSockJSHTTP(kind string) func(ctx context.Context, base string, env *dialEnv) (conn, error) {
	return func(ctx context.Context, base string, env *dialEnv) (conn, error) {
		rctx, cancel := context.WithCancel(context.Background())
		s := &sockjsHTTP{url: sockjsSessionURL(base), kind: kind, env: env, in: newSockJSInbox(),
			ctx: rctx, cancel: cancel, done: make(chan struct{})}
		go s.downstream()
		select {
		case <-s.in.opened:
			return s, nil
		case <-s.in.ended:
			s.Close()
			return nil, s.in.err
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		}
	}
}

// downstream opens one receiving request after the other.
func (s *sockjsHTTP) downstream() {
	defer close(s.done)
	for {
		err := s.receive()
		if errors.Is(err, errRefused) {
			s.env.refused.n.Add(1)
			err = nil
		}
		if err != nil {
			s.in.end(err)
			return
		}
	}
}

// receive runs one downstream request to its end.
func (s *sockjsHTTP) receive() error {
	method := http.MethodPost
	if s.kind == "eventsource" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(s.ctx, method, s.url+"/"+s.kind, nil)
	if err != nil {
		return err
	}
	resp, err := s.env.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sockjs %s: status %d", s.kind, resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	refused := false
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			if refused {
				return errRefused
			}
			return nil
		}
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		var f []byte
		switch s.kind {
		case "eventsource":
			p, ok := bytes.CutPrefix(line, []byte("data: "))
			if !ok {
				continue
			}
			f = unescapeEventSource(p)
		default:
			if len(line) > 1 && line[0] == 'h' && line[1] == 'h' {
				continue // the xhr_streaming prelude: 2 KiB of "h"
			}
			f = line
		}
		if err := s.in.frame(s.ctx, f); err != nil {
			if errors.Is(err, errRefused) {
				refused = true
				continue
			}
			return err
		}
	}
}

// unescapeEventSource undoes sockjs-go's escaping of %, CR, LF and NUL.
func unescapeEventSource(p []byte) []byte {
	if bytes.IndexByte(p, '%') < 0 {
		return p
	}
	r := strings.NewReplacer("%25", "%", "%0A", "\n", "%0D", "\r", "%00", "\x00")
	return []byte(r.Replace(string(p)))
}

func (s *sockjsHTTP) Send(ctx context.Context, p []byte) error {
	body, _ := json.Marshal([]string{string(p)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/xhr_send", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := s.env.hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("sockjs xhr_send: status %d", resp.StatusCode)
	}
	return nil
}

func (s *sockjsHTTP) Recv(ctx context.Context) ([]byte, error) { return s.in.recv(ctx) }

func (s *sockjsHTTP) Close() {
	s.cancel()
	<-s.done
}
