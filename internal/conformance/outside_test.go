package conformance_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether"
)

// The outside tests are a second client written from PROTOCOL.md alone, as
// a reviewer outside the project would write it: only net/http,
// gorilla/websocket and bufio, the server started as the wire tests start
// theirs (newWireEnv: an application that echoes every message and closes
// the session on a text message "close CODE REASON"), nothing else of the
// project imported. Each assertion names the section of PROTOCOL.md it
// checks, and compares the bytes the document states with the bytes the
// server sends.

// outsideTimeout bounds every request and read of the outside client.
const outsideTimeout = 5 * time.Second

// outsideClient talks to one server through its prefix.
type outsideClient struct {
	t    *testing.T
	env  *wireEnv
	base string // http://127.0.0.1:port/rt/
	hc   *http.Client
}

// ended waits until the server has ended session s (its application's
// OnClose ran): a window's end is awaited as a condition, not slept past.
func (c *outsideClient) ended(s outsideSession) {
	c.t.Helper()
	c.env.closeError(c.t, wireSession{Session: s.Session})
}

func newOutside(t *testing.T, opts *tether.Options) *outsideClient {
	e := newWireEnv(t, opts)
	return &outsideClient{t: t, env: e, base: e.base, hc: e.hc}
}

// outsideSession is a negotiate answer (section 2).
type outsideSession struct {
	Protocol        int      `json:"protocol"`
	Session         string   `json:"session"`
	Token           string   `json:"token"`
	Transports      []string `json:"transports"`
	HeartbeatMs     int      `json:"heartbeatMs"`
	ResumeWindowMs  int      `json:"resumeWindowMs"`
	MaxMessageBytes int      `json:"maxMessageBytes"`
	MaxBodyBytes    int      `json:"maxBodyBytes"`
}

// auth is the query that authenticates a request with the token parameter.
func (s outsideSession) auth() string {
	return "session=" + url.QueryEscape(s.Session) + "&token=" + url.QueryEscape(s.Token)
}

// outsideAnswer is an HTTP answer read to its end.
type outsideAnswer struct {
	status int
	header http.Header
	body   string
}

func (a outsideAnswer) String() string { return fmt.Sprintf("%d %q", a.status, a.body) }

// newRequest makes a request of the prefix's endpoint.
func (c *outsideClient) newRequest(ctx context.Context, method, endpoint string, header http.Header, body []byte) *http.Request {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+endpoint, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return req
}

// request sends one request and reads its whole answer.
func (c *outsideClient) request(method, endpoint string, header http.Header, body []byte) outsideAnswer {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), outsideTimeout)
	defer cancel()
	resp, err := c.hc.Do(c.newRequest(ctx, method, endpoint, header, body))
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading the body: %v", method, endpoint, err)
	}
	return outsideAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// open sends a request and returns its answer with the body unread; the
// body is closed when the test ends, or by the function returned.
func (c *outsideClient) open(method, endpoint string, header http.Header) (*http.Response, context.CancelFunc) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*outsideTimeout)
	resp, err := c.hc.Do(c.newRequest(ctx, method, endpoint, header, nil))
	if err != nil {
		cancel()
		c.t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	stop := func() { cancel(); resp.Body.Close() }
	c.t.Cleanup(stop)
	return resp, stop
}

func (c *outsideClient) negotiate() outsideSession {
	c.t.Helper()
	a := c.request("POST", "negotiate?v=1", nil, nil)
	if a.status != 200 {
		c.t.Fatalf("negotiate: %v", a)
	}
	var s outsideSession
	if err := json.Unmarshal([]byte(a.body), &s); err != nil {
		c.t.Fatalf("negotiate: %v in %q", err, a.body)
	}
	return s
}

// send posts a batch of frames with the given query after the session's
// authentication.
func (c *outsideClient) send(s outsideSession, query string, frames ...string) outsideAnswer {
	c.t.Helper()
	return c.request("POST", "send?"+s.auth()+query, nil, outsideBatch(frames...))
}

// outsideBatch writes frames as a batch (section 4.1).
func outsideBatch(frames ...string) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, strconv.Itoa(len(f))+":"+f...)
	}
	return b
}

// outsideParseBatch reads a batch (section 4.1) strictly: lengths of 1 to
// 10 digits, no leading zero, never 0.
func outsideParseBatch(b []byte) ([]string, error) {
	var frames []string
	for len(b) > 0 {
		colon := bytes.IndexByte(b, ':')
		if colon < 1 || colon > 10 {
			return frames, fmt.Errorf("bad length prefix in %q", b)
		}
		digits := string(b[:colon])
		n, err := strconv.Atoi(digits)
		if err != nil || n <= 0 || digits[0] == '0' || strconv.Itoa(n) != digits {
			return frames, fmt.Errorf("bad length %q", digits)
		}
		b = b[colon+1:]
		if n > len(b) {
			return frames, fmt.Errorf("frame of %d bytes cut short at %d", n, len(b))
		}
		frames = append(frames, string(b[:n]))
		b = b[n:]
	}
	return frames, nil
}

// outsideParseCompact reads a compact batch (section 4.6): LEB128 lengths
// in the fewest bytes, 1 to 5 of them, never 0.
func outsideParseCompact(b []byte) ([]string, error) {
	var frames []string
	for len(b) > 0 {
		var n uint64
		i := 0
		for {
			if i == len(b) || i == 5 {
				return frames, fmt.Errorf("length cut short or too long in %q", b)
			}
			n |= uint64(b[i]&0x7f) << (7 * i)
			if b[i]&0x80 == 0 {
				if i > 0 && b[i] == 0 {
					return frames, fmt.Errorf("length not in its fewest bytes in %q", b)
				}
				i++
				break
			}
			i++
		}
		if n == 0 {
			return frames, errors.New("length 0")
		}
		b = b[i:]
		if n > uint64(len(b)) {
			return frames, fmt.Errorf("frame of %d bytes cut short at %d", n, len(b))
		}
		frames = append(frames, string(b[:n]))
		b = b[n:]
	}
	return frames, nil
}

// outsideLEB128 writes n as section 4.6 says.
func outsideLEB128(n int) string {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return string(append(b, c))
		}
		b = append(b, c|0x80)
	}
}

// outsideMessage is a message decoded from any of the four forms.
type outsideMessage struct {
	binary bool
	data   string
}

// decodeMessage decodes a message frame of any form; ok is false for a
// control frame.
func decodeMessage(t *testing.T, frame string) (m outsideMessage, ok bool) {
	t.Helper()
	if frame == "" {
		t.Fatal("empty frame")
	}
	switch frame[0] {
	case 'm':
		return outsideMessage{data: frame[1:]}, true
	case 'b':
		return outsideMessage{binary: true, data: frame[1:]}, true
	case 'M', 'B':
		d, err := base64.StdEncoding.Strict().DecodeString(frame[1:])
		if err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		return outsideMessage{binary: frame[0] == 'B', data: string(d)}, true
	}
	return outsideMessage{}, false
}

// wantError checks an answer against section 9's format: the status, a
// one-line body, text/plain; charset=utf-8, nosniff and no-store.
func wantError(t *testing.T, what string, a outsideAnswer, status int, body string) {
	t.Helper()
	if a.status != status || a.body != body+"\n" {
		t.Errorf("%s: answered %v, PROTOCOL.md says %d %q", what, a, status, body+"\n")
		return
	}
	for k, v := range map[string]string{
		"Content-Type":           "text/plain; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
	} {
		if got := a.header.Get(k); got != v {
			t.Errorf("%s: %s is %q, section 9 says %q", what, k, got, v)
		}
	}
}

// TestOutsideNegotiate checks section 2: every field of the answer, its
// headers, and the refusals.
func TestOutsideNegotiate(t *testing.T) {
	c := newOutside(t, &tether.Options{
		HeartbeatInterval: 1500 * time.Millisecond,
		ResumeWindow:      7 * time.Second,
		MaxMessageBytes:   2000,
		MaxBodyBytes:      9000,
	})
	a := c.request("POST", "negotiate?v=1", nil, nil)
	if a.status != 200 {
		t.Fatalf("negotiate: %v", a)
	}
	if got := a.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("negotiate: Content-Type %q, section 2 says application/json", got)
	}
	if got := a.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("negotiate: Cache-Control %q, section 2 says no-store", got)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(a.body), &fields); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"protocol", "session", "token", "transports", "heartbeatMs", "resumeWindowMs", "maxMessageBytes", "maxBodyBytes"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("negotiate: no field %q in %s", name, a.body)
		}
		delete(fields, name)
	}
	if len(fields) > 0 {
		t.Logf("negotiate: fields section 2 does not name: %v", fields)
	}
	var s outsideSession
	if err := json.Unmarshal([]byte(a.body), &s); err != nil {
		t.Fatal(err)
	}
	if s.Protocol != 1 {
		t.Errorf("protocol %d, want 1", s.Protocol)
	}
	for name, v := range map[string]string{"session": s.Session, "token": s.Token} {
		b, err := base64.RawURLEncoding.Strict().DecodeString(v)
		if err != nil || len(b) != 16 || len(v) != 22 {
			t.Errorf("%s %q is not 128 bits in base64url without padding (%v)", name, v, err)
		}
	}
	if got := strings.Join(s.Transports, ","); got != "websocket,sse,streaming,longpoll" {
		t.Errorf("transports %q, section 1 says the default order is websocket, sse, streaming, longpoll", got)
	}
	if s.HeartbeatMs != 1500 || s.ResumeWindowMs != 7000 || s.MaxMessageBytes != 2000 || s.MaxBodyBytes != 9000 {
		t.Errorf("negotiate: %+v, want the configured 1500, 7000, 2000, 9000", s)
	}
	if s2 := c.negotiate(); s2.Session == s.Session || s2.Token == s.Token {
		t.Error("two negotiates gave the same session or token")
	}

	for _, q := range []string{"", "?v=2", "?v=0", "?v=", "?v=01", "?v=1.0", "?version=1"} {
		wantError(t, "negotiate"+q, c.request("POST", "negotiate"+q, nil, nil), 400, "unsupported protocol version")
	}
	a = c.request("GET", "negotiate?v=1", nil, nil)
	wantError(t, "GET negotiate", a, 405, "method not allowed")
	if got := a.header.Get("Allow"); got != "POST, OPTIONS" {
		t.Errorf("GET negotiate: Allow %q, section 9 says %q", got, "POST, OPTIONS")
	}
	wantError(t, "negotiate with a body over maxBodyBytes", c.request("POST", "negotiate?v=1", nil, make([]byte, 9001)), 413, "body too big")
	if a := c.request("POST", "negotiate?v=1", nil, make([]byte, 9000)); a.status != 200 {
		t.Errorf("negotiate with a body of maxBodyBytes: %v, want 200", a)
	}
	wantError(t, "negotiate from another origin", c.request("POST", "negotiate?v=1", http.Header{"Origin": {"http://evil.example"}}, nil), 403, "origin not allowed")
	if a := c.request("POST", "negotiate?v=1", http.Header{"Origin": {strings.TrimSuffix(c.base, "/rt/")}}, nil); a.status != 200 {
		t.Errorf("negotiate from the server's own origin: %v, section 7 says it is accepted", a)
	}
	for _, path := range []string{"nothing", "", "longpoll/x", "LONGPOLL", "negotiate.json"} {
		wantError(t, "the path {prefix}"+path, c.request("GET", path, nil, nil), 404, "not found")
	}
	// The last segment alone names the endpoint (section 9).
	for _, path := range []string{"x/negotiate?v=1", "a/b/negotiate?v=1", "negotiate/?v=1"} {
		if a := c.request("POST", path, nil, nil); a.status != 200 {
			t.Errorf("POST {prefix}%s: %v, section 9 says the last segment names the endpoint", path, a)
		}
	}
}

// TestOutsideAttachRefusals checks the refusals of sections 3 and 9 on
// every attach endpoint and on send.
func TestOutsideAttachRefusals(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	attaches := []string{"websocket", "sse", "streaming", "longpoll"}
	for _, ep := range attaches {
		wantError(t, ep+" without received", c.request("GET", ep+"?"+s.auth(), nil, nil), 400, "bad request: missing received")
		for _, bad := range []string{"-1", "+1", "01", "x", "1.0", "", "99999999999999999999999"} {
			wantError(t, ep+" received="+bad, c.request("GET", ep+"?"+s.auth()+"&received="+bad, nil, nil), 400, "bad request: invalid received")
		}
		for _, bad := range []string{"0", "-5", "x", "01", ""} {
			wantError(t, ep+" heartbeatMs="+bad, c.request("GET", ep+"?"+s.auth()+"&received=0&heartbeatMs="+bad, nil, nil), 400, "bad request: invalid heartbeatMs")
		}
		wantError(t, ep+" without session", c.request("GET", ep+"?token="+s.Token+"&received=0", nil, nil), 404, "unknown session")
		wantError(t, ep+" without token", c.request("GET", ep+"?session="+s.Session+"&received=0", nil, nil), 404, "unknown session")
		wantError(t, ep+" with a wrong token", c.request("GET", ep+"?session="+s.Session+"&token=AAAAAAAAAAAAAAAAAAAAAA&received=0", nil, nil), 404, "unknown session")
		wantError(t, ep+" with a wrong token header beside the right parameter", c.request("GET", ep+"?"+s.auth()+"&received=0", http.Header{"Tether-Token": {"AAAAAAAAAAAAAAAAAAAAAA"}}, nil), 404, "unknown session")
		wantError(t, ep+" with an unknown session", c.request("GET", ep+"?session=AAAAAAAAAAAAAAAAAAAAAA&token="+s.Token+"&received=0", nil, nil), 404, "unknown session")
		wantError(t, ep+" without session and token but with received", c.request("GET", ep+"?received=0", nil, nil), 404, "unknown session")
		a := c.request("POST", ep+"?"+s.auth()+"&received=0", nil, nil)
		wantError(t, "POST "+ep, a, 405, "method not allowed")
		if got := a.header.Get("Allow"); got != "GET, OPTIONS" {
			t.Errorf("POST %s: Allow %q, section 9 says %q", ep, got, "GET, OPTIONS")
		}
		wantError(t, ep+" from another origin", c.request("GET", ep+"?"+s.auth()+"&received=0", http.Header{"Origin": {"http://evil.example"}}, nil), 403, "origin not allowed")
	}
	// A missing received is answered before a malformed seq? Section 3
	// names each alone; check seq on websocket alone.
	wantError(t, "websocket seq=0", c.request("GET", "websocket?"+s.auth()+"&received=0&seq=0", nil, nil), 400, "bad request: invalid seq")
	for _, bad := range []string{"-1", "01", "x"} {
		wantError(t, "websocket seq="+bad, c.request("GET", "websocket?"+s.auth()+"&received=0&seq="+bad, nil, nil), 400, "bad request: invalid seq")
	}
	wantError(t, "a GET websocket that is no handshake", c.request("GET", "websocket?"+s.auth()+"&received=0", nil, nil), 400, "bad request: not a WebSocket handshake")
	wantError(t, "sse with neither received nor Last-Event-ID", c.request("GET", "sse?"+s.auth(), nil, nil), 400, "bad request: missing received")

	// send: section 3's table and section 9.
	wantError(t, "send without session", c.request("POST", "send?token="+s.Token+"&seq=1", nil, outsideBatch("mx")), 404, "unknown session")
	wantError(t, "send with a wrong token", c.request("POST", "send?session="+s.Session+"&token=AAAAAAAAAAAAAAAAAAAAAA&seq=1", nil, outsideBatch("mx")), 404, "unknown session")
	wantError(t, "send of a message without seq", c.send(s, "", "mx"), 400, "bad request: missing seq")
	wantError(t, "send of a message with seq=0", c.send(s, "&seq=0", "mx"), 400, "bad request: missing seq")
	wantError(t, "send with received=01", c.send(s, "&received=01"), 400, "bad request: invalid received")
	wantError(t, "send with seq=-1", c.send(s, "&seq=-1", "mx"), 400, "bad request: invalid seq")
	if a := c.send(s, "&heartbeatMs=0"); a.status != 204 {
		t.Errorf("send ignores heartbeatMs (section 5.3), answered %v", a)
	}
	if a := c.send(s, "", "h"); a.status != 204 {
		t.Errorf("send of a heartbeat alone needs no seq (section 3), answered %v", a)
	}
	a := c.request("GET", "send?"+s.auth(), nil, nil)
	wantError(t, "GET send", a, 405, "method not allowed")
	if got := a.header.Get("Allow"); got != "POST, OPTIONS" {
		t.Errorf("GET send: Allow %q, section 9 says %q", got, "POST, OPTIONS")
	}
	wantError(t, "send from another origin", c.request("POST", "send?"+s.auth()+"&seq=1", http.Header{"Origin": {"http://evil.example"}}, outsideBatch("mx")), 403, "origin not allowed")
	// The token in a header alone (section 3).
	if a := c.request("POST", "send?session="+s.Session+"&seq=1", http.Header{"Tether-Token": {s.Token}}, outsideBatch("mx")); a.status != 204 {
		t.Errorf("send with the token in Tether-Token: %v, want 204", a)
	}
}

// TestOutsideMalformedSend checks section 9's malformed send bodies: each
// answers 400 bad request: <detail>, accepts none of its messages and
// leaves the session as it was.
func TestOutsideMalformedSend(t *testing.T) {
	c := newOutside(t, nil)
	s := c.negotiate()
	long := strings.Repeat("é", 62) // 124 bytes
	for _, tc := range []struct{ name, body, detail string }{
		{"a length of 0", "6:mhello0:", ""},
		{"a leading zero", "06:mhello", ""},
		{"eleven digits", "00000000006:mhello", ""},
		{"no colon", "6mhello", ""},
		{"a frame cut short", "6:mhello9:mcut", ""},
		{"an unknown type", "6:mhello2:xy", ""},
		{"invalid base64", "6:mhello3:Mab", ""},
		{"base64 without padding", "6:mhello3:BAA", ""},
		{"base64 of the URL alphabet", "6:mhello5:B-_8=", ""},
		{"base64 with a space", "6:mhello6:BAA EC", ""},
		{"invalid UTF-8", "6:mhello2:m\xff", ""},
		{"invalid UTF-8 in base64", "6:mhello5:M/w==", ""},
		{"a lone surrogate", "6:mhello4:m\xed\xa0\x80", ""},
		{"a frame after a close frame", "5:c10006:mhello", ""},
		{"h with a payload", "6:mhello2:hx", ""},
		{"an a count with a sign", "6:mhello3:a+0", ""},
		{"an a count with a leading zero", "6:mhello3:a00", ""},
		{"an empty a count", "6:mhello1:a", ""},
		{"a close code with a sign", "6:mhello6:c+1000", ""},
		{"a close code 1005", "6:mhello5:c1005", "bad request: malformed frame: close code 1005 not allowed"},
		{"a close code 1006", "6:mhello5:c1006", "bad request: malformed frame: close code 1006 not allowed"},
		{"a close code 999", "6:mhello4:c999", "bad request: malformed frame: close code 999 not allowed"},
		{"a close code 5000", "6:mhello5:c5000", "bad request: malformed frame: close code 5000 not allowed"},
		{"a close code 65536", "6:mhello6:c65536", `bad request: malformed frame: invalid close code "65536"`},
		{"a close code 10000", "6:mhello6:c10000", `bad request: malformed frame: invalid close code "10000"`},
		{"a close code 1004", "6:mhello5:c1004", "bad request: malformed frame: close code 1004 not allowed"},
		{"a close code 1015", "6:mhello5:c1015", "bad request: malformed frame: close code 1015 not allowed"},
		{"a close code 1016", "6:mhello5:c1016", "bad request: malformed frame: close code 1016 not allowed"},
		{"a close code 2999", "6:mhello5:c2999", "bad request: malformed frame: close code 2999 not allowed"},
		{"a close code 0", "6:mhello2:c0", "bad request: malformed frame: close code 0 not allowed"},
		{"a close code with a leading zero", "6:mhello6:c01000", ""},
		{"a close reason of 124 bytes", "6:mhello" + strconv.Itoa(len("c4100 "+long)) + ":c4100 " + long, "bad request: malformed frame: close reason longer than 123 bytes"},
		{"a close reason not UTF-8", "6:mhello8:c4100 \xff", ""},
		{"a close without code", "6:mhello1:c", ""},
		{"a close code followed by no space", "6:mhello6:c4100x", ""},
	} {
		a := c.request("POST", "send?"+s.auth()+"&seq=1", nil, []byte(tc.body))
		if a.status != 400 || !strings.HasPrefix(a.body, "bad request: ") || !strings.HasSuffix(a.body, "\n") || strings.Count(a.body, "\n") != 1 {
			t.Errorf("send of %s: answered %v, section 9 says 400 bad request: <detail>", tc.name, a)
		} else if tc.detail != "" && a.body != tc.detail+"\n" {
			t.Errorf("send of %s: answered %q, section 4 says %q", tc.name, a.body, tc.detail+"\n")
		}
	}
	// None was accepted: message 1 is still to come, and the session lives.
	if a := c.send(s, "&seq=1", "mfirst"); a.status != 204 {
		t.Fatalf("send after the malformed ones: %v", a)
	}
	a := c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil)
	if a.status != 200 || a.body != "6:mfirst" {
		t.Errorf("poll after the malformed sends: %v, want the echo of the first message alone", a)
	}
	// A close reason of exactly 123 bytes is allowed.
	r123 := strings.Repeat("é", 61) + "x"
	if a := c.send(s, "", "c4100 "+r123); a.status != 204 {
		t.Errorf("send of a close frame with a reason of 123 bytes: %v, want 204", a)
	}
	wantError(t, "poll after the client's close frame", c.request("GET", "longpoll?"+s.auth()+"&received=1", nil, nil), 404, "unknown session")
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestOutsideAllowedCloseCodes checks section 4's allowed close codes: a
// client's close frame with each ends the session.
func TestOutsideAllowedCloseCodes(t *testing.T) {
	c := newOutside(t, nil)
	for _, frame := range []string{"c1000", "c1003", "c1007", "c1014", "c3000", "c4999", "c4100 " + strings.Repeat("é", 61) + "x"} {
		s := c.negotiate()
		if a := c.send(s, "", frame); a.status != 204 {
			t.Errorf("send of %.10q: %v, section 4 allows it", frame, a)
		}
		wantError(t, "poll after "+frame[:5], c.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil), 404, "unknown session")
	}
}
