package conformance_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
)

// The downstream readers of the outside client: one per transport, each
// reading the framing its section of PROTOCOL.md states and handing over
// the frames, raw (type byte and payload), in order.

// outsideDown is one attached connection's server-to-client frames.
type outsideDown interface {
	// next returns the next frame; io.EOF once the connection ended.
	next() (string, error)
	// stop abandons the connection.
	stop()
}

// attach attaches a connection of the named transport with query (after
// the session's authentication) and checks the answer's headers.
func (c *outsideClient) attach(name string, s outsideSession, query string) outsideDown {
	c.t.Helper()
	switch name {
	case "websocket":
		return c.attachWebSocket(s, query, "")
	case "sse":
		return c.attachSSE(s, query)
	case "streaming":
		return c.attachStreaming(s, query)
	case "longpoll":
		return &pollDown{c: c, s: s, query: query, received: queryCount(query, "received")}
	}
	c.t.Fatalf("no transport %q", name)
	return nil
}

// queryCount reads a count from a query the test wrote.
func queryCount(query, name string) int {
	for _, kv := range strings.Split(query, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// wsDown reads a WebSocket (section 4.2).
type wsDown struct {
	t       *testing.T
	conn    *ws.Conn
	compact bool
	pending []string
	// closeCode and closeText are the WebSocket close the server sent.
	closeCode int
	closeText string
}

func (c *outsideClient) attachWebSocket(s outsideSession, query, subprotocol string) *wsDown {
	c.t.Helper()
	d := ws.Dialer{HandshakeTimeout: outsideTimeout}
	if subprotocol != "" {
		d.Subprotocols = []string{subprotocol}
	}
	u := "ws" + strings.TrimPrefix(c.base, "http") + "websocket?" + s.auth() + query
	conn, resp, err := d.Dial(u, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		c.t.Fatalf("websocket attach %s: %v (%d)", query, err, status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "" {
		c.t.Errorf("websocket handshake answer has Sec-WebSocket-Extensions %q; section 4.2 says none", got)
	}
	w := &wsDown{t: c.t, conn: conn, compact: resp.Header.Get("Sec-WebSocket-Protocol") == "tether.compact"}
	conn.SetCloseHandler(w.closed)
	c.t.Cleanup(w.stop)
	return w
}

// closed records the server's WebSocket close and answers it, as RFC 6455
// requires.
func (w *wsDown) closed(code int, text string) error {
	w.closeCode, w.closeText = code, text
	w.conn.WriteControl(ws.CloseMessage, ws.FormatCloseMessage(code, ""), time.Now().Add(outsideTimeout))
	return nil
}

// refusedWebSocket makes a WebSocket handshake that must be refused and
// returns the HTTP answer (section 3: every refusal is an HTTP answer).
func (c *outsideClient) refusedWebSocket(s outsideSession, query string, header http.Header) outsideAnswer {
	c.t.Helper()
	d := ws.Dialer{HandshakeTimeout: outsideTimeout}
	u := "ws" + strings.TrimPrefix(c.base, "http") + "websocket?" + s.auth() + query
	conn, resp, err := d.Dial(u, header)
	if err == nil {
		conn.Close()
		c.t.Fatalf("websocket attach %s was accepted, want a refusal", query)
	}
	if resp == nil {
		c.t.Fatalf("websocket attach %s: %v, want an HTTP answer", query, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return outsideAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (w *wsDown) next() (string, error) {
	for len(w.pending) == 0 {
		w.conn.SetReadDeadline(time.Now().Add(outsideTimeout))
		typ, p, err := w.conn.ReadMessage()
		if err != nil {
			if w.closeCode != 0 {
				return "", io.EOF
			}
			return "", err
		}
		switch {
		case typ == ws.TextMessage:
			w.pending = append(w.pending, string(p))
		case w.compact:
			frames, err := outsideParseCompact(p)
			if err != nil || len(frames) == 0 {
				w.t.Errorf("compact batch %q: %v (section 4.2: one or more frames)", p, err)
			}
			w.pending = append(w.pending, frames...)
		default:
			w.pending = append(w.pending, "b"+string(p))
		}
	}
	f := w.pending[0]
	w.pending = w.pending[1:]
	return f, nil
}

func (w *wsDown) stop() { w.conn.Close() }

// write sends one WebSocket message.
func (w *wsDown) write(typ int, p string) {
	w.t.Helper()
	w.conn.SetWriteDeadline(time.Now().Add(outsideTimeout))
	if err := w.conn.WriteMessage(typ, []byte(p)); err != nil {
		w.t.Fatalf("websocket write: %v", err)
	}
}

// wantStreamHeaders checks section 4.5's headers of an sse or streaming
// answer.
func wantStreamHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k, v := range map[string]string{
		"Cache-Control":          "no-cache, no-transform",
		"X-Accel-Buffering":      "no",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s %q, section 4.5 says %q", what, k, got, v)
		}
	}
}

// sseDown reads an event stream (section 4.3, compact: 4.6).
type sseDown struct {
	t       *testing.T
	r       *bufio.Reader
	stopFn  func()
	compact bool
	pending []string
	count   int // messages read, to check each event's id
}

func (c *outsideClient) attachSSE(s outsideSession, query string) *sseDown {
	c.t.Helper()
	resp, stop := c.openStream("sse", s, query)
	compact := strings.Contains("&"+query, "&compact=1")
	want := "text/event-stream; charset=utf-8"
	if compact {
		want += "; compact=1"
	}
	if got := resp.Header.Get("Content-Type"); got != want {
		c.t.Errorf("sse: Content-Type %q, section 4.3/4.6 says %q", got, want)
	}
	wantStreamHeaders(c.t, "sse", resp.Header)
	d := &sseDown{t: c.t, r: bufio.NewReader(resp.Body), stopFn: stop, compact: compact, count: queryCount(query, "received")}
	// The prelude (section 4.3): a comment of padding and retry:500, then
	// a heartbeat event.
	line, err := d.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ":") || len(line) < 1800 || len(line) > 2300 {
		c.t.Errorf("sse: first line %.40q (%d bytes, %v); section 4.5 says a comment of about 2 KiB of padding", line, len(line), err)
	}
	if line, _ = d.r.ReadString('\n'); line != "retry:500\n" {
		c.t.Errorf("sse: second line %q, section 4.3 says %q", line, "retry:500\n")
	}
	if line, _ = d.r.ReadString('\n'); line != "\n" {
		c.t.Errorf("sse: third line %q, want the blank line ending the prelude's event", line)
	}
	if f, err := d.next(); err != nil || f != "h" {
		c.t.Errorf("sse: first event %q (%v), section 4.5 says a heartbeat", f, err)
	}
	return d
}

func (d *sseDown) next() (string, error) {
	for len(d.pending) == 0 {
		var data, id string
		hasData, hasID := false, false
		for {
			line, err := d.r.ReadString('\n')
			if err != nil {
				if line != "" {
					d.t.Errorf("sse: the response ended inside a line %q", line)
				}
				return "", io.EOF
			}
			line = strings.TrimSuffix(line, "\n")
			if strings.Contains(line, "\r") {
				d.t.Errorf("sse: a line holds a CR: %q (section 4.3)", line)
			}
			if line == "" {
				break
			}
			field, value, _ := strings.Cut(line, ":")
			switch field {
			case "data":
				if hasData {
					d.t.Errorf("sse: an event with two data lines (section 4.3: its single data: line)")
				}
				data, hasData = value, true
			case "id":
				id, hasID = value, true
			default:
				d.t.Errorf("sse: unexpected line %q", line)
			}
		}
		if !hasData {
			d.t.Errorf("sse: an event without data (id %q)", id)
			continue
		}
		frames := []string{data}
		if d.compact {
			frames = strings.Split(data, "\x1e")
		}
		messages := 0
		for _, f := range frames {
			if f == "" {
				d.t.Errorf("sse: an empty frame in %q", data)
				continue
			}
			switch f[0] {
			case 'a':
				d.t.Errorf("sse: an acknowledgement %q; section 5.1 says the server sends none on sse", f)
			case 'b':
				d.t.Errorf("sse: a raw binary frame %q; sections 4.3 and 4.6 say B", f)
			case 'm':
				if strings.ContainsAny(f, "\r\n") || d.compact && strings.Contains(f[1:], "\x1e") {
					d.t.Errorf("sse: text %q sent as m", f)
				}
			}
			if f[0] == 'm' || f[0] == 'M' || f[0] == 'b' || f[0] == 'B' {
				messages++
			}
		}
		d.count += messages
		switch {
		case messages > 0 && (!hasID || id != strconv.Itoa(d.count)):
			d.t.Errorf("sse: event %q has id %q (%v); sections 4.3 and 4.6 say id:%d", data, id, hasID, d.count)
		case messages == 0 && hasID:
			d.t.Errorf("sse: event %q without messages has id %q; section 4.3 says none", data, id)
		}
		d.pending = append(d.pending, frames...)
	}
	f := d.pending[0]
	d.pending = d.pending[1:]
	return f, nil
}

func (d *sseDown) stop() { d.stopFn() }

// streamDown reads a multipart stream (section 4.4, compact: 4.6).
type streamDown struct {
	t        *testing.T
	r        *bufio.Reader
	stopFn   func()
	boundary string
	compact  bool
	ended    bool
	pending  []string
}

var outsideBoundary = regexp.MustCompile(`^multipart/x-mixed-replace; boundary=([A-Za-z0-9-]{1,70})(; compact=1)?$`)

func (c *outsideClient) attachStreaming(s outsideSession, query string) *streamDown {
	c.t.Helper()
	resp, stop := c.openStream("streaming", s, query)
	compact := strings.Contains("&"+query, "&compact=1")
	ct := resp.Header.Get("Content-Type")
	m := outsideBoundary.FindStringSubmatch(ct)
	if m == nil || (m[2] != "") != compact {
		c.t.Fatalf("streaming: Content-Type %q, sections 4.4 and 4.6 say multipart/x-mixed-replace; boundary=B (compact: ; compact=1)", ct)
	}
	wantStreamHeaders(c.t, "streaming", resp.Header)
	d := &streamDown{t: c.t, r: bufio.NewReader(resp.Body), stopFn: stop, boundary: m[1], compact: compact}
	// The preamble: padding, never --B, its last CRLF the delimiter's.
	var preamble strings.Builder
	for {
		line, err := d.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("streaming: preamble %q: %v", preamble.String(), err)
		}
		if line == "--"+d.boundary+"\r\n" {
			break
		}
		preamble.WriteString(line)
	}
	if p := preamble.String(); !strings.HasSuffix(p, "\r\n") || strings.Contains(p, "--"+d.boundary) || len(p) < 1800 || len(p) > 2300 {
		c.t.Errorf("streaming: preamble of %d bytes %.40q; section 4.4: padding of about 2 KiB ending in CRLF", len(p), p)
	}
	if first := d.part(); len(first) != 1 || first[0] != "h" {
		c.t.Errorf("streaming: first part %q, section 4.5 says a heartbeat", first)
	}
	return d
}

// part reads a part's headers and batch, after its delimiter line, and
// the line after it.
func (d *streamDown) part() []string {
	d.t.Helper()
	var head strings.Builder
	for {
		line, err := d.r.ReadString('\n')
		if err != nil {
			d.t.Fatalf("streaming: part headers %q: %v", head.String(), err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	h := head.String()
	var n int
	if _, err := fmt.Sscanf(h, "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", &n); err != nil ||
		h != "Content-Type: application/octet-stream\r\nContent-Length: "+strconv.Itoa(n)+"\r\n\r\n" {
		d.t.Fatalf("streaming: part headers %q; section 4.4 says Content-Type: application/octet-stream, Content-Length", h)
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(d.r, body); err != nil {
		d.t.Fatalf("streaming: part of %d bytes: %v", n, err)
	}
	if string(body[n:]) != "\r\n" {
		d.t.Errorf("streaming: part batch followed by %q, section 4.4 says CRLF", body[n:])
	}
	parse := outsideParseBatch
	if d.compact {
		parse = outsideParseCompact
	}
	frames, err := parse(body[:n])
	if err != nil {
		d.t.Errorf("streaming: part %q: %v", body[:n], err)
	}
	for _, f := range frames {
		switch f[0] {
		case 'M', 'B':
			d.t.Errorf("streaming: frame %q in base64; section 4.4 says raw frames", f)
		case 'a':
			d.t.Errorf("streaming: an acknowledgement %q; section 5.1 says the server sends none on streaming", f)
		}
	}
	return frames
}

func (d *streamDown) next() (string, error) {
	for len(d.pending) == 0 {
		if d.ended {
			return "", io.EOF
		}
		line, err := d.r.ReadString('\n')
		if err != nil {
			// Section 4.5: a response ends cleanly, with the closing
			// delimiter.
			return "", fmt.Errorf("the stream ended without its closing delimiter after %q: %w", line, err)
		}
		switch line {
		case "--" + d.boundary + "\r\n":
			d.pending = d.part()
		case "--" + d.boundary + "--\r\n":
			d.ended = true
			if rest, _ := io.ReadAll(d.r); len(rest) > 0 {
				d.t.Errorf("streaming: %q after the closing delimiter", rest)
			}
		default:
			d.t.Fatalf("streaming: line %q where section 4.4 says --B or --B--", line)
		}
	}
	f := d.pending[0]
	d.pending = d.pending[1:]
	return f, nil
}

func (d *streamDown) stop() { d.stopFn() }

// pollDown polls (sections 4.1 and 5.1), each poll stating the messages
// read so far.
type pollDown struct {
	c        *outsideClient
	s        outsideSession
	query    string // the first poll's; later ones replace received
	received int
	pending  []string
	closed   bool
	polls    int
}

func (p *pollDown) next() (string, error) {
	for len(p.pending) == 0 {
		if p.closed {
			return "", io.EOF
		}
		q := p.query
		if p.polls > 0 {
			q = regexp.MustCompile(`&received=\d+`).ReplaceAllString(q, "") + "&received=" + strconv.Itoa(p.received)
		}
		p.polls++
		a := p.c.request("GET", "longpoll?"+p.s.auth()+q, nil, nil)
		if a.status != 200 {
			return "", fmt.Errorf("poll: %v", a)
		}
		compact := strings.Contains("&"+q, "&compact=1")
		want := "application/octet-stream"
		parse := outsideParseBatch
		if compact {
			want += "; compact=1"
			parse = outsideParseCompact
		}
		// A Content-Length, when there is one, is the body's.
		if a.header.Get("Content-Length") != "" {
			want := strconv.Itoa(len(a.body))
			if got := a.header.Get("Content-Length"); got != want {
				p.c.t.Errorf("longpoll: Content-Length %q of a body of %s bytes", got, want)
			}
		}
		for k, v := range map[string]string{
			"Content-Type":           want,
			"Cache-Control":          "no-cache, no-store, no-transform",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := a.header.Get(k); got != v {
				p.c.t.Errorf("longpoll: %s %q, section 4.1/4.6 says %q", k, got, v)
			}
		}
		frames, err := parse([]byte(a.body))
		if err != nil {
			p.c.t.Errorf("longpoll: body %q: %v", a.body, err)
		}
		for _, f := range frames {
			switch f[0] {
			case 'm', 'M', 'b', 'B':
				p.received++
			case 'c':
				p.closed = true
			case 'a':
				p.c.t.Errorf("longpoll: an acknowledgement %q; section 5.1 says the server sends none on longpoll", f)
			}
		}
		p.pending = append(p.pending, frames...)
	}
	f := p.pending[0]
	p.pending = p.pending[1:]
	return f, nil
}

// stop does nothing: a poll ends with its answer.
func (p *pollDown) stop() {}

// nextFrame returns the next frame whose type is not in skip (for
// example "ha": heartbeats and acknowledgements); the connection's end or
// an error fails the test.
func nextFrame(t *testing.T, d outsideDown, skip string) string {
	t.Helper()
	for {
		f, err := d.next()
		if err != nil {
			t.Fatalf("reading the next frame: %v", err)
		}
		if !strings.ContainsRune(skip, rune(f[0])) {
			return f
		}
	}
}

// wantEndWithoutFrames reads d to its end, which must come with nothing
// but heartbeats before it: no message, no close frame.
func wantEndWithoutFrames(t *testing.T, d outsideDown, what string) {
	t.Helper()
	for {
		f, err := d.next()
		if err == io.EOF {
			return
		}
		if err != nil || f != "h" {
			t.Fatalf("%s: %q %v, want the end without a frame", what, f, err)
		}
	}
}

// openStream opens an sse or streaming response that must answer 200.
func (c *outsideClient) openStream(endpoint string, s outsideSession, query string) (*http.Response, func()) {
	c.t.Helper()
	resp, stop := c.open("GET", endpoint+"?"+s.auth()+query, nil)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("%s attach %s: %d %q", endpoint, query, resp.StatusCode, b)
	}
	return resp, stop
}
