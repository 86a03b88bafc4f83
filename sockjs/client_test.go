package sockjs_test

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

	"github.com/gorilla/websocket"
)

// A small client of the SockJS protocol, written from its framing: "o"
// opens, "h" is a heartbeat, a["m1","m2"] carries messages, c[code,"reason"]
// closes. Upstream, the client sends a JSON array of strings: a WebSocket
// text message, or the body of an xhr_send POST.

// frame is one SockJS frame.
type frame struct {
	kind   byte // 'o', 'h', 'a' or 'c'
	msgs   []string
	code   int
	reason string
}

func parseFrame(line string) (frame, error) {
	if line == "" {
		return frame{}, errors.New("empty frame")
	}
	f := frame{kind: line[0]}
	switch f.kind {
	case 'o', 'h':
		if len(line) != 1 {
			return frame{}, fmt.Errorf("frame %q", line)
		}
	case 'a':
		if err := json.Unmarshal([]byte(line[1:]), &f.msgs); err != nil {
			return frame{}, fmt.Errorf("frame %q: %v", line, err)
		}
	case 'c':
		var v [2]any
		if err := json.Unmarshal([]byte(line[1:]), &v); err != nil {
			return frame{}, fmt.Errorf("frame %q: %v", line, err)
		}
		code, ok1 := v[0].(float64)
		reason, ok2 := v[1].(string)
		if !ok1 || !ok2 {
			return frame{}, fmt.Errorf("frame %q", line)
		}
		f.code, f.reason = int(code), reason
	default:
		return frame{}, fmt.Errorf("unknown frame %q", line)
	}
	return f, nil
}

// errLostSession is what next returns for a second open frame.
var errLostSession = errors.New("server lost session: a second open frame")

// closed is what recv returns after a close frame.
type closed struct {
	code   int
	reason string
}

func (c closed) Error() string { return fmt.Sprintf("closed %d %q", c.code, c.reason) }

// sjsClient is one SockJS session seen from the client.
type sjsClient struct {
	frames chan frame // from the reader goroutine
	errc   chan error // the reader's end
	done   chan struct{}
	stop   func() // ends the connection without a close frame
	sendFn func(ctx context.Context, body []byte) error
	url    string // the session's URL, without the endpoint

	sendMu  sync.Mutex // sockjs-client sends one request at a time, too
	pending []string   // messages of an "a" frame not yet returned
	heard   map[byte]int
}

func newClient() *sjsClient {
	return &sjsClient{frames: make(chan frame), errc: make(chan error, 1), done: make(chan struct{}), heard: make(map[byte]int)}
}

// deliver hands f to recv; false once the client is dropped.
func (c *sjsClient) deliver(f frame) bool {
	select {
	case c.frames <- f:
		return true
	case <-c.done:
		return false
	}
}

// next returns the next frame.
func (c *sjsClient) next(ctx context.Context) (frame, error) {
	select {
	case f := <-c.frames:
		c.heard[f.kind]++
		if f.kind == 'o' && c.heard['o'] > 1 {
			// The server ended the session and opened a new one of the
			// same id: sockjs-client closes then.
			return frame{}, errLostSession
		}
		return f, nil
	case err := <-c.errc:
		c.errc <- err
		return frame{}, err
	case <-ctx.Done():
		return frame{}, ctx.Err()
	}
}

// recv returns the next message, skipping "o" and "h", or closed.
func (c *sjsClient) recv(ctx context.Context) (string, error) {
	for len(c.pending) == 0 {
		f, err := c.next(ctx)
		if err != nil {
			return "", err
		}
		switch f.kind {
		case 'a':
			c.pending = f.msgs
		case 'c':
			return "", closed{f.code, f.reason}
		}
	}
	m := c.pending[0]
	c.pending = c.pending[1:]
	return m, nil
}

func (c *sjsClient) send(ctx context.Context, msgs ...string) error {
	body, _ := json.Marshal(msgs)
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.sendFn(ctx, body)
}

// drop ends the connection as a client that goes away (or calls close():
// sockjs-client sends nothing then either).
func (c *sjsClient) drop() {
	select {
	case <-c.done:
	default:
		close(c.done)
		c.stop()
	}
}

func sessionPath(base string) string {
	var b [8]byte
	rand.Read(b[:])
	return base + "/000/" + hex.EncodeToString(b[:])
}

// dialWebSocket opens a SockJS session on the websocket transport.
func dialWebSocket(ctx context.Context, base string, header http.Header) (*sjsClient, error) {
	u := "ws" + strings.TrimPrefix(sessionPath(base), "http") + "/websocket"
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: %s", err, resp.Status)
		}
		return nil, err
	}
	c := newClient()
	var wg sync.WaitGroup
	c.stop = func() {
		conn.Close()
		wg.Wait()
	}
	c.sendFn = func(ctx context.Context, body []byte) error {
		return conn.WriteMessage(websocket.TextMessage, body)
	}
	wg.Go(func() {
		for {
			_, p, err := conn.ReadMessage()
			if err != nil {
				c.errc <- err
				return
			}
			f, err := parseFrame(string(p))
			if err != nil {
				c.errc <- err
				return
			}
			if !c.deliver(f) {
				return
			}
		}
	})
	return c, nil
}

// dialXHR opens a SockJS session on xhr-polling (endpoint "xhr") or
// xhr-streaming ("xhr_streaming"): one request after the other until a
// close frame.
func dialXHR(ctx context.Context, base, endpoint string, header http.Header) (*sjsClient, error) {
	u := sessionPath(base)
	c := newClient()
	c.url = u
	rctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	c.stop = func() {
		cancel()
		wg.Wait()
	}
	post := func(ctx context.Context, path string, body []byte) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		return http.DefaultClient.Do(req)
	}
	c.sendFn = func(ctx context.Context, body []byte) error {
		resp, err := post(ctx, "/xhr_send", body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			msg, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("xhr_send: %s %s", resp.Status, bytes.TrimSpace(msg))
		}
		return nil
	}
	// The first response must open the session, or say why not.
	resp, err := post(rctx, "/"+endpoint, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%s: %s", endpoint, resp.Status)
	}
	wg.Go(func() {
		for {
			end, err := c.readResponse(resp)
			if err != nil {
				c.errc <- err
				return
			}
			if end {
				return
			}
			if resp, err = post(rctx, "/"+endpoint, nil); err != nil {
				c.errc <- err
				return
			}
		}
	})
	return c, nil
}

// readResponse hands over the frames of one poll or stream response; end is
// true after a close frame or once the client is dropped.
func (c *sjsClient) readResponse(resp *http.Response) (end bool, err error) {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("poll: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 1 && strings.Trim(line, "h") == "" {
			continue // xhr-streaming's prelude
		}
		f, err := parseFrame(line)
		if err != nil {
			return false, err
		}
		if !c.deliver(f) {
			return true, nil
		}
		if f.kind == 'c' {
			return true, nil
		}
	}
	return false, sc.Err()
}
