package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
)

// The wire tests are a client written from PROTOCOL.md alone: raw
// requests with net/http and gorilla/websocket, every answer read as bytes
// and compared with the bytes the document states.

// Limits of the wire server.
const wireMaxMessage = 1 << 10

// wireEnv is a server whose application echoes every message, and closes
// the session when a text message says "close CODE REASON".
type wireEnv struct {
	srv  *tether.Server
	base string // http://127.0.0.1:port/rt/
	addr string
	hc   *http.Client
	ends sync.Map // session id -> the error OnClose was given
}

func newWireEnv(t *testing.T, opts *tether.Options) *wireEnv {
	e := &wireEnv{}
	var o tether.Options
	if opts != nil {
		o = *opts
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = wireMaxMessage
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = time.Second
	}
	o.Logger = slog.New(slog.DiscardHandler)
	e.srv = tether.NewServer(&tether.Callbacks{
		Message: func(s *session.Session, m session.Message) {
			if cmd, ok := strings.CutPrefix(string(m.Data), "close "); ok && m.Type == session.Text {
				code, reason, _ := strings.Cut(cmd, " ")
				n, _ := strconv.Atoi(code)
				s.Close(session.StatusCode(n), reason)
				return
			}
			s.Send(s.Context(), m)
		},
		Close: func(s *session.Session, err error) { e.ends.Store(s.ID(), err) },
	}, &o)
	mux := http.NewServeMux()
	mux.Handle("/rt/", e.srv)
	hs := httptest.NewServer(mux)
	tr := &http.Transport{}
	e.hc = &http.Client{Transport: tr}
	t.Cleanup(func() {
		e.srv.Close()
		hs.Close()
		tr.CloseIdleConnections()
	})
	e.base = hs.URL + "/rt/"
	e.addr = hs.Listener.Addr().String()
	return e
}

// wireSession is a negotiated session.
type wireSession struct {
	Session, Token string
}

func (s wireSession) query() string {
	return "session=" + url.QueryEscape(s.Session) + "&token=" + url.QueryEscape(s.Token)
}

func (e *wireEnv) negotiate(t *testing.T) wireSession {
	t.Helper()
	resp := e.do(t, "POST", "negotiate?v=1", nil, nil)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %s", resp.Status)
	}
	var s wireSession
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request to endpoint (path and query under the prefix).
func (e *wireEnv) do(t *testing.T, method, endpoint string, header http.Header, body []byte) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	r, err := http.NewRequestWithContext(ctx, method, e.base+endpoint, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		r.Header[k] = v
	}
	resp, err := e.hc.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	return resp
}

// exact does a request and returns its status and whole body as bytes:
// "404 unknown session\n".
func (e *wireEnv) exact(t *testing.T, method, endpoint string, header http.Header, body []byte) string {
	t.Helper()
	resp := e.do(t, method, endpoint, header, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// readUntil reads r until what it has read holds want, and returns it.
func readUntil(r io.Reader, want string) (string, error) {
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(want)) {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil && !bytes.Contains(got, []byte(want)) {
			return string(got), err
		}
	}
	return string(got), nil
}

// wireBatch is a send body: frames in batch framing (section 4.1).
func wireBatch(frames ...string) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, strconv.Itoa(len(f))+":"+f...)
	}
	return b
}

// TestAttachAfterCloseFrameIs404 attaches right after the close frame
// arrived on the downstream transports, many times: section 6 says a
// closed session can no longer be attached once its close frame was
// delivered, so the attach answers 404 every time, never the frame again.
func TestAttachAfterCloseFrameIs404(t *testing.T) {
	const tries = 40
	e := newWireEnv(t, nil)
	for _, name := range []string{"sse", "streaming", "longpoll"} {
		t.Run(name, func(t *testing.T) {
			for i := range tries {
				s := e.negotiate(t)
				if got := e.exact(t, "POST", "send?seq=1&"+s.query(), nil, wireBatch("mclose 1000 done")); got != "204 " {
					t.Fatalf("try %d: send: %q", i, got)
				}
				resp := e.do(t, "GET", name+"?received=0&"+s.query(), nil, nil)
				got, err := readUntil(resp.Body, "c1000 done")
				resp.Body.Close()
				if err != nil {
					t.Fatalf("try %d: reading the close frame: %v after %q", i, err, got)
				}
				if got := e.exact(t, "GET", name+"?received=0&"+s.query(), nil, nil); got != "404 unknown session\n" {
					t.Fatalf("try %d: attach after the close frame: %.80q, want 404", i, got)
				}
			}
		})
	}
}
