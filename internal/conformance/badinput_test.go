package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// The bad-input table: each row sends one kind of bad input to a running
// server and checks the answer PROTOCOL.md section 9 documents for it, while
// three other sessions (websocket, longpoll, sse) exchange counted messages
// through the whole test. At the end their counts must be exact: nothing a
// row did disturbed them.
//
// Answers are written "STATUS BODY" for HTTP answers, followed by what
// became of the session the row used: "; session unaffected" (it still
// exchanges messages) or "; session closed CODE" (the code the server's
// session ended with).

// Limits of the server under test.
const (
	badMaxMessage  = 1 << 10
	badMaxBody     = 8 << 10
	badMaxSessions = 200
	badPerClient   = 3           // Options.MaxSessionsPerClient, for requests with an X-Test-Client header
	badReadTimeout = time.Second // Options.ReadTimeout: a send body must arrive within it
	badHeaderWait  = time.Second // http.Server.ReadHeaderTimeout (README recommends 10s)
	badHeaderBytes = 64 << 10    // http.Server.MaxHeaderBytes, as README recommends
	evilOrigin     = "https://evil.example"
	goodOrigin     = "https://app.example"
)

type badRow struct {
	input string // what the row sends
	want  string // the documented answer
	run   func(t *testing.T, e *badEnv) string
}

var badInputs = []badRow{
	// negotiate
	{"negotiate without v", "400 unsupported protocol version", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "POST", "negotiate", "", nil))
	}},
	{"negotiate with v=2", "400 unsupported protocol version", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "POST", "negotiate?v=2", "", nil))
	}},
	{"negotiate with GET", "405 method not allowed", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "GET", "negotiate?v=1", "", nil))
	}},
	{"negotiate from a foreign Origin", "403 origin not allowed", func(t *testing.T, e *badEnv) string {
		r := e.req(t, "POST", "negotiate?v=1", "", nil)
		r.Header.Set("Origin", evilOrigin)
		return e.answer(t, r)
	}},
	{"CORS preflight from a foreign Origin", "403 origin not allowed", func(t *testing.T, e *badEnv) string {
		r := e.req(t, "OPTIONS", "negotiate?v=1", "", nil)
		r.Header.Set("Origin", evilOrigin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		return e.answer(t, r)
	}},
	{"negotiate claiming X-Forwarded-Proto: https, with the https Origin of the server's own host, over http", "403 origin not allowed", func(t *testing.T, e *badEnv) string {
		// Options.TrustForwardedProto is off: the header is the client's word.
		r := e.req(t, "POST", "negotiate?v=1", "", nil)
		r.Header.Set("Origin", "https://"+e.addr)
		r.Header.Set("X-Forwarded-Proto", "https")
		return e.answer(t, r)
	}},
	{"negotiate refused by the auth hook", "403 denied", func(t *testing.T, e *badEnv) string {
		r := e.req(t, "POST", "negotiate?v=1", "", nil)
		r.Header.Set("X-Test-Deny", "1")
		return e.answer(t, r)
	}},

	// tokens and sessions
	{"send without token", "404 unknown session; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "POST", "send?session="+s.Session+"&seq=1", "", batch("mx"))) + e.after(t, s)
	}},
	{"send with a wrong token", "404 unknown session; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		wrong := *s
		wrong.Token = strings.Repeat("A", len(s.Token))
		return e.answer(t, e.req(t, "POST", "send?seq=1", wrong.query(), batch("mx"))) + e.after(t, s)
	}},
	{"send with the right token in the query and a wrong one in a Tether-Token header", "404 unknown session; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		r := e.req(t, "POST", "send?seq=1", s.query(), batch("mx"))
		r.Header.Set(httpx.TokenHeader, strings.Repeat("A", len(s.Token)))
		return e.answer(t, r) + e.after(t, s)
	}},
	{"longpoll for an unknown session", "404 unknown session", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "GET", "longpoll?session=AAAAAAAAAAAAAAAAAAAAAA&token=AAAAAAAAAAAAAAAAAAAAAA&received=0", "", nil))
	}},
	{"longpoll for an expired session", "404 unknown session", func(t *testing.T, e *badEnv) string {
		r := e.req(t, "POST", "negotiate?v=1", "", nil)
		r.Header.Set("X-Test-Expire", "1") // the handler shortens its resume window to 50ms
		s := e.negotiate(t, r)
		if code := e.ended(t, s); code != wire.StatusAbnormalClosure {
			t.Errorf("expired session ended with %d, want %d", code, wire.StatusAbnormalClosure)
		}
		return e.answer(t, e.req(t, "GET", "longpoll?received=0", s.query(), nil))
	}},
	{"longpoll stating fewer messages than it acknowledged (a late, stale attach)", "409 stale attach; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		if got := e.after(t, s); got != "; session unaffected" {
			t.Fatalf("before: %s", got)
		}
		// Acknowledge the echo received (the poll waits out a heartbeat).
		if got := e.answer(t, e.req(t, "GET", fmt.Sprintf("longpoll?received=%d", s.received), s.query(), nil)); !strings.HasPrefix(got, "200") {
			t.Fatalf("acknowledging poll: %s", got)
		}
		return e.answer(t, e.req(t, "GET", "longpoll?received=0", s.query(), nil)) + e.after(t, s)
	}},
	{"send to a session the client closed", "404 unknown session", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		if got := e.answer(t, e.req(t, "POST", "send", s.query(), batch("c1000"))); got != "204" {
			t.Errorf("close: %s, want 204", got)
		}
		e.ended(t, s)
		return e.answer(t, e.req(t, "POST", "send?seq=1", s.query(), batch("mx")))
	}},

	// cross-origin requests on a live session
	{"WebSocket handshake from a foreign Origin", "403 origin not allowed; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		h := http.Header{"Origin": {evilOrigin}}
		_, resp, err := ws.DefaultDialer.Dial(e.wsURL(s, "received=0&seq=1"), h)
		if err == nil {
			t.Fatal("the handshake succeeded")
		}
		return responseAnswer(resp) + e.after(t, s)
	}},
	{"send from a foreign Origin", "403 origin not allowed; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		r := e.req(t, "POST", "send?seq=1", s.query(), batch("mforged"))
		r.Header.Set("Origin", evilOrigin)
		// after() sends message 1 and checks that its echo is the first:
		// the forged one was not accepted.
		return e.answer(t, r) + e.after(t, s)
	}},

	// malformed batches on send: refused whole, the session goes on
	{"send batch with a bad length prefix", "400 bad request: malformed frame: invalid frame length prefix; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=1", []byte("x:mhi"))
	}},
	{"send batch truncated mid-frame", "400 bad request: malformed frame: frame length 10 exceeds the 6 bytes left; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=1", []byte("10:mhello"))
	}},
	{"send batch with a zero-length frame", "400 bad request: malformed frame: frame length with a leading zero or zero length; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=1", []byte("0:"))
	}},
	{"send frame of an unknown type", "400 bad request: malformed frame: unknown frame type 'z'; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=1", batch("zz"))
	}},
	{"send message with invalid base64", "400 bad request: malformed frame: invalid base64: illegal base64 data at input byte 0; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=1", batch("B!!!!"))
	}},
	{"send text message with invalid UTF-8", "400 bad request: malformed frame: text message is not valid UTF-8; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=1", batch("m\xff\xfe"))
	}},
	{"send good frames, then a malformed one", "400 bad request: malformed frame: unknown frame type 'z'; session unaffected", func(t *testing.T, e *badEnv) string {
		// The good message before the fault is not accepted either:
		// after() checks that its own message 1 is the first echoed.
		return e.badSend(t, "seq=1", append(batch("mfirst"), "1:z"...))
	}},
	{"send close frame with a reason over 123 bytes", "400 bad request: malformed frame: close reason longer than 123 bytes; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "", batch("c1000 "+strings.Repeat("r", 124)))
	}},
	{"send close frame with code 1005", "400 bad request: malformed frame: close code 1005 not allowed; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "", batch("c1005 x"))
	}},
	{"send heartbeat with a payload", "400 bad request: malformed frame: heartbeat with a payload; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "", batch("hx"))
	}},
	{"send frame after a close frame", "400 bad request: malformed frame: frame after close; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=1", append(batch("c1000"), batch("mlate")...))
	}},
	{"send messages without seq", "400 bad request: missing seq; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "", batch("mx"))
	}},
	{"send with seq=abc", "400 bad request: invalid seq; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=abc", batch("mx"))
	}},
	{"send body over maxBodyBytes", "413 body too big; session unaffected", func(t *testing.T, e *badEnv) string {
		return e.badSend(t, "seq=1", bytes.Repeat(batch("mabcdefgh"), badMaxBody/10+1))
	}},
	{"send body truncated by the client", "400 bad request: reading body: unexpected EOF; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.rawHTTP(t, "POST /rt/send?seq=1&"+s.query()+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4:mabc", true) + e.after(t, s)
	}},

	// send faults that end the session
	{"send message over maxMessageBytes", "413 message too big; session closed 1009", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "POST", "send?seq=1", s.query(), batch("m"+strings.Repeat("x", badMaxMessage+1)))) + e.closed(t, s)
	}},
	{"send acknowledging messages never sent", "400 bad request: acknowledgement of messages never sent: 999 acknowledged, 0 sent; session closed 4003", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "POST", "send", s.query(), batch("a999"))) + e.closed(t, s)
	}},
	{"send skipping a sequence number", "409 sequence gap; session closed 4000", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "POST", "send?seq=3", s.query(), batch("mx"))) + e.closed(t, s)
	}},
	{"send replaying a sequence number", "204; session unaffected", func(t *testing.T, e *badEnv) string {
		// Message 1 twice, as a client retrying a send whose answer was
		// lost: accepted once. after() then sends message 2 and checks
		// that the echoes are "replayed" once, then its own.
		s := e.session(t)
		for range 2 {
			if got := e.answer(t, e.req(t, "POST", "send?seq=1", s.query(), batch("mreplayed"))); got != "204" {
				return got
			}
		}
		s.seq, s.expect = 1, []string{"replayed"}
		return "204" + e.after(t, s)
	}},

	// attach requests
	{"longpoll without received", "400 bad request: missing received; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "longpoll", s.query(), nil)) + e.after(t, s)
	}},
	{"longpoll with received=abc", "400 bad request: invalid received; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "longpoll?received=abc", s.query(), nil)) + e.after(t, s)
	}},
	{"longpoll acknowledging messages never sent", "200 16:c4000 resume gap; session closed 4000", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "longpoll?received=5", s.query(), nil)) + e.closed(t, s)
	}},
	{"WebSocket endpoint without an upgrade", "400 bad request: not a WebSocket handshake; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "websocket?received=0&seq=1", s.query(), nil)) + e.after(t, s)
	}},
	{"WebSocket with seq=0", "400 bad request: invalid seq; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "websocket?received=0&seq=0", s.query(), nil)) + e.after(t, s)
	}},
	{"longpoll with heartbeatMs=abc", "400 bad request: invalid heartbeatMs; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "longpoll?received=0&heartbeatMs=abc", s.query(), nil)) + e.after(t, s)
	}},
	{"sse with heartbeatMs=0", "400 bad request: invalid heartbeatMs; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "sse?received=0&heartbeatMs=0", s.query(), nil)) + e.after(t, s)
	}},
	{"WebSocket with heartbeatMs=-1000", "400 bad request: invalid heartbeatMs; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "websocket?received=0&seq=1&heartbeatMs=-1000", s.query(), nil)) + e.after(t, s)
	}},

	// wrong methods and paths
	{"GET on send", "405 method not allowed; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "GET", "send?seq=1", s.query(), nil)) + e.after(t, s)
	}},
	// The method and the query are checked before the session
	// (PROTOCOL.md section 9, the order of the checks).
	{"GET on send for an unknown session", "405 method not allowed", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "GET", "send?session=AAAAAAAAAAAAAAAAAAAAAA&token=AAAAAAAAAAAAAAAAAAAAAA&seq=1", "", nil))
	}},
	{"send with seq=abc for an unknown session", "400 bad request: invalid seq", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "POST", "send?session=AAAAAAAAAAAAAAAAAAAAAA&token=AAAAAAAAAAAAAAAAAAAAAA&seq=abc", "", batch("mx")))
	}},
	{"POST on longpoll for an unknown session", "405 method not allowed", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "POST", "longpoll?session=AAAAAAAAAAAAAAAAAAAAAA&token=AAAAAAAAAAAAAAAAAAAAAA&received=0", "", nil))
	}},
	{"POST on longpoll", "405 method not allowed; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.answer(t, e.req(t, "POST", "longpoll?received=0", s.query(), nil)) + e.after(t, s)
	}},
	{"PUT on sse", "405 method not allowed", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "PUT", "sse?received=0", "", nil))
	}},
	{"an unknown endpoint", "404 not found", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "GET", "jsonp?callback=x", "", nil))
	}},

	// WebSocket frames
	{"WebSocket frame of an unknown type", "close frame 4003 malformed frame; session closed 4003", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.TextMessage, []byte("zhello"))
	}},
	{"WebSocket text message with invalid UTF-8", "close frame 4003 malformed frame; session closed 4003", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.TextMessage, []byte("m\xff\xfe"))
	}},
	{"WebSocket empty text message", "close frame 4003 malformed frame; session closed 4003", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.TextMessage, nil)
	}},
	{"WebSocket message over maxMessageBytes", "close frame 1009 message too big; session closed 1009", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.BinaryMessage, make([]byte, badMaxMessage+2))
	}},
	{"WebSocket base64 message decoding to over maxMessageBytes", "close frame 1009 message too big; session closed 1009", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.TextMessage, append([]byte("B"), base64.StdEncoding.EncodeToString(make([]byte, badMaxMessage+1))...))
	}},
	{"WebSocket acknowledging messages never sent", "close frame 4003 bad acknowledgement; session closed 4003", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.TextMessage, []byte("a7"))
	}},
	{"WebSocket close frame with a reason over 123 bytes", "close frame 4003 malformed frame; session closed 4003", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.TextMessage, []byte("c1000 "+strings.Repeat("r", 124)))
	}},
	{"WebSocket close frame with code 1015", "close frame 4003 malformed frame; session closed 4003", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.TextMessage, []byte("c1015"))
	}},
	{"WebSocket acknowledgement with a leading zero", "close frame 4003 malformed frame; session closed 4003", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=1", ws.TextMessage, []byte("a01"))
	}},
	{"WebSocket attach for an unknown session", "404 unknown session", func(t *testing.T, e *badEnv) string {
		_, resp, err := ws.DefaultDialer.Dial(e.wsURL(&rawSession{Session: "AAAAAAAAAAAAAAAAAAAAAA", Token: "AAAAAAAAAAAAAAAAAAAAAA"}, "received=0"), nil)
		if err == nil {
			t.Fatal("the handshake succeeded")
		}
		return responseAnswer(resp)
	}},
	{"WebSocket attach stating fewer messages than it acknowledged", "409 stale attach; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		if got := e.after(t, s); got != "; session unaffected" {
			t.Fatalf("before: %s", got)
		}
		if got := e.answer(t, e.req(t, "POST", fmt.Sprintf("send?received=%d", s.received), s.query(), nil)); got != "204" {
			t.Fatalf("acknowledging send: %s", got)
		}
		_, resp, err := ws.DefaultDialer.Dial(e.wsURL(s, "received=0&seq=2"), nil)
		if err == nil {
			t.Fatal("the handshake succeeded")
		}
		return responseAnswer(resp) + e.after(t, s)
	}},
	{"WebSocket skipping a sequence number", "close frame 4000 sequence gap; session closed 4000", func(t *testing.T, e *badEnv) string {
		return e.badWebSocket(t, "seq=5", ws.TextMessage, []byte("mx"))
	}},

	// downstream faults, seen by the Go client
	{"multipart stream truncated inside a part", "the client attaches again; 20 echoes exact", func(t *testing.T, e *badEnv) string {
		return e.truncatedStream(t, "streaming")
	}},
	{"event stream truncated inside an event", "the client attaches again; 20 echoes exact", func(t *testing.T, e *badEnv) string {
		return e.truncatedStream(t, "sse")
	}},

	// what the http.Server configured as README recommends answers
	{"request headers over MaxHeaderBytes", "431 431 Request Header Fields Too Large", func(t *testing.T, e *badEnv) string {
		big := strings.Repeat("a", 2*badHeaderBytes)
		return e.rawHTTP(t, "POST /rt/negotiate?v=1 HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n", false)
	}},
	// The timeout strikes inside the header's name: net/http answers 400
	// (TestSlowHeadersWithREADMEServer has the other case).
	{"request headers sent one byte a second", "400 400 Bad Request", func(t *testing.T, e *badEnv) string {
		return e.trickle(t, "POST /rt/negotiate?v=1 HTTP/1.1\r\nHost: x\r\n", "X-Slow: "+strings.Repeat("a", 100))
	}},
	{"negotiate declaring a 100000-byte body, sending one byte, then nothing", "408 request timeout", func(t *testing.T, e *badEnv) string {
		return e.rawHTTP(t, "POST /rt/negotiate?v=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{", false)
	}},
	{"negotiate body sent one byte a second", "408 request timeout", func(t *testing.T, e *badEnv) string {
		return e.trickle(t, "POST /rt/negotiate?v=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", strings.Repeat("x", 100))
	}},
	{"negotiate body over maxBodyBytes", "413 body too big", func(t *testing.T, e *badEnv) string {
		return e.answer(t, e.req(t, "POST", "negotiate?v=1", "", make([]byte, badMaxBody+1)))
	}},
	{"send body sent one byte a second", "408 request timeout; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.trickle(t, "POST /rt/send?seq=1&"+s.query()+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", strings.Repeat("x", 100)) + e.after(t, s)
	}},

	// A body announced and never sent, where Tether reads none: answered at
	// once, then the connection is closed (net/http would otherwise wait
	// for the body, with no deadline, before and after the answer).
	{"longpoll announcing a body it never sends", "200 1:h; connection closed; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.unsentBody(t, "GET /rt/longpoll?received=0&"+s.query(), "") + e.after(t, s)
	}},
	{"longpoll with a chunked body it never ends", "200 1:h; connection closed; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.unsentBody(t, "GET /rt/longpoll?received=0&"+s.query(), "Transfer-Encoding: chunked\r\n\r\n5\r\nabc") + e.after(t, s)
	}},
	{"sse announcing a body it never sends, superseded by a long poll", "200 stream; session unaffected; connection closed", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		conn, got := e.unsentBodyStream(t, "GET /rt/sse?received=0&"+s.query())
		defer conn.Close()
		got += e.after(t, s)
		// The long poll of after() superseded the stream: it ends, and its
		// connection with it.
		if _, err := io.Copy(io.Discard, conn); err != nil {
			return got + "; stream not ended: " + err.Error()
		}
		return got + "; connection closed"
	}},
	{"send with seq=abc announcing a body it never sends", "400 bad request: invalid seq; connection closed; session unaffected", func(t *testing.T, e *badEnv) string {
		s := e.session(t)
		return e.unsentBody(t, "POST /rt/send?seq=abc&"+s.query(), "") + e.after(t, s)
	}},
	{"send for an unknown session announcing a body it never sends", "404 unknown session; connection closed", func(t *testing.T, e *badEnv) string {
		return e.unsentBody(t, "POST /rt/send?seq=1&session=AAAAAAAAAAAAAAAAAAAAAA&token=AAAAAAAAAAAAAAAAAAAAAA", "")
	}},
	{"negotiate with v=2 announcing a body it never sends", "400 unsupported protocol version; connection closed", func(t *testing.T, e *badEnv) string {
		return e.unsentBody(t, "POST /rt/negotiate?v=2", "")
	}},
	{"CORS preflight announcing a body it never sends", "204; connection closed", func(t *testing.T, e *badEnv) string {
		return e.unsentBody(t, "OPTIONS /rt/send", "Origin: "+goodOrigin+"\r\nAccess-Control-Request-Method: POST\r\n")
	}},
	{"an unknown endpoint announcing a body it never sends", "404 not found; connection closed", func(t *testing.T, e *badEnv) string {
		return e.unsentBody(t, "GET /rt/jsonp", "")
	}},

	// load
	{"negotiate beyond MaxSessions", "503 too many sessions", func(t *testing.T, e *badEnv) string {
		var held []*rawSession
		defer func() { e.release(t, held) }()
		for e.srv.Sessions() < badMaxSessions {
			held = append(held, e.session(t))
		}
		return e.answer(t, e.req(t, "POST", "negotiate?v=1", "", nil))
	}},
	{"negotiate beyond MaxSessionsPerClient", "503 too many sessions for this client; another client: 200; the same client once its sessions closed: 200", func(t *testing.T, e *badEnv) string {
		var held []*rawSession
		defer func() { e.release(t, held) }()
		negotiate := func(client string) *http.Request {
			r := e.req(t, "POST", "negotiate?v=1", "", nil)
			r.Header.Set("X-Test-Client", client)
			return r
		}
		for range badPerClient {
			held = append(held, e.negotiate(t, negotiate("a")))
		}
		got := e.answer(t, negotiate("a"))
		// e.negotiate fails the row unless the answer is 200.
		held = append(held, e.negotiate(t, negotiate("b")))
		// Sessions that end count off at once.
		e.release(t, held)
		held = []*rawSession{e.negotiate(t, negotiate("a"))}
		return got + "; another client: 200; the same client once its sessions closed: 200"
	}},
	{"a burst of 400 concurrent negotiates", "every one answered: 200 up to MaxSessions, then 503 too many sessions", func(t *testing.T, e *badEnv) string {
		const burst = 400
		room := badMaxSessions - e.srv.Sessions()
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			held    []*rawSession
			answers = map[string]int{}
		)
		defer func() { e.release(t, held) }()
		// Every connection is opened, and has served one request, before
		// the burst. The clock of http.Server's ReadHeaderTimeout (1 s
		// here) starts when a new connection is accepted, and 400
		// goroutines starting at once under -race on 2 loaded CPUs can
		// hold a request's first write past it (the server then closes
		// the connection: EOF or reset). On a kept-alive connection the
		// clock starts only once the next request's first bytes arrive.
		conns := make([]*keptConn, burst)
		defer func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}()
		for i := range conns {
			conns[i] = e.keptConn(t)
		}
		for _, c := range conns {
			wg.Go(func() {
				resp, err := c.do("POST /rt/negotiate?v=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
				if err != nil {
					mu.Lock()
					answers["error: "+err.Error()]++
					mu.Unlock()
					return
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				mu.Lock()
				defer mu.Unlock()
				if resp.StatusCode == http.StatusOK {
					var s rawSession
					if json.Unmarshal(body, &s) == nil {
						held = append(held, &s)
					}
					answers["200"]++
					return
				}
				answers[fmt.Sprintf("%d %s", resp.StatusCode, firstLine(body))]++
			})
		}
		wg.Wait()
		want := map[string]int{"200": room, "503 too many sessions": burst - room}
		if fmt.Sprint(answers) != fmt.Sprint(want) {
			t.Errorf("answers %v, want %v", answers, want)
		}
		if len(held) != room {
			t.Errorf("%d sessions made, want %d", len(held), room)
		}
		return "every one answered: 200 up to MaxSessions, then 503 too many sessions"
	}},
}

// TestBadInput runs the bad-input table against one server while three
// background sessions keep exchanging messages, then checks their counts.
func TestBadInput(t *testing.T) {
	if len(badInputs) < 25 {
		t.Fatalf("the table has %d rows, want at least 25", len(badInputs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newBadEnv(t)
	bg := e.background(t, ctx)

	for _, row := range badInputs {
		t.Run(row.input, func(t *testing.T) {
			got := row.run(t, e)
			if got != row.want {
				t.Errorf("%s:\n got %s\nwant %s", row.input, got, row.want)
			}
		})
	}

	bg.check(t)
}

// backgroundSession sends numbered messages to the echo server and checks
// each echo, until stop.
type backgroundSession struct {
	transport      string
	sent, received int
	err            error
}

func (b *backgroundSession) run(ctx context.Context, c *client.Session, stop <-chan struct{}) {
	defer c.Close(wire.StatusNormalClosure, "")
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		want := payload('b', i)
		if b.err = c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(want)}); b.err != nil {
			return
		}
		b.sent++
		m, err := c.Recv(ctx)
		if err != nil {
			b.err = err
			return
		}
		if string(m.Data) != want {
			b.err = fmt.Errorf("echo %q, want %q", m.Data, want)
			return
		}
		b.received++
	}
}

// badEnv is the server under test.
type badEnv struct {
	srv  *tether.Server
	base string // http://127.0.0.1:port/rt/
	addr string
	hc   *http.Client
	ends sync.Map // session id -> wire.StatusCode it ended with
}

func newBadEnv(t *testing.T) *badEnv {
	e := &badEnv{}
	h := tether.HandlerFunc(func(s *session.Session) {
		defer func() { e.ends.Store(s.ID(), wire.CloseStatus(s.Err())) }()
		switch s.Request().Header.Get("X-Test-Expire") {
		case "":
		case "after-first-message":
			// Once the client has attached and sent a message: a window
			// of 50 ms from negotiate could end before a slow client
			// attaches.
			m, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			s.Expire(50 * time.Millisecond)
			if s.Send(s.Context(), m) != nil {
				return
			}
		default:
			s.Expire(50 * time.Millisecond)
		}
		echo(s)
	})
	e.srv = tether.NewServer(h, &tether.Options{
		AllowedOrigins:    []string{goodOrigin},
		Authorize:         denyOnHeader,
		HeartbeatInterval: time.Second,
		MaxMessageBytes:   badMaxMessage,
		MaxBodyBytes:      badMaxBody,
		MaxSessions:       badMaxSessions,
		// Requests that name a client in X-Test-Client hold at most
		// badPerClient sessions each; the others are not limited.
		MaxSessionsPerClient: badPerClient,
		ClientKey:            func(r *http.Request) string { return r.Header.Get("X-Test-Client") },
		ReadTimeout:          badReadTimeout,
		MaxStreamBytes:       4 << 10, // streams end often: the truncation rows need several
		Logger:               slog.New(slog.DiscardHandler),
	})
	mux := http.NewServeMux()
	mux.Handle("/rt/", e.srv)
	hs := httptest.NewUnstartedServer(mux)
	// As README recommends, with a shorter ReadHeaderTimeout for the test;
	// no ReadTimeout or WriteTimeout, which would cut long polls and
	// streams.
	hs.Config.ReadHeaderTimeout = badHeaderWait
	hs.Config.MaxHeaderBytes = badHeaderBytes
	hs.Config.IdleTimeout = 2 * time.Minute
	hs.Start()
	tr := &http.Transport{}
	e.hc = &http.Client{Transport: tr}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
		hs.Close()
		tr.CloseIdleConnections()
	})
	e.base = hs.URL + "/rt/"
	e.addr = hs.Listener.Addr().String()
	return e
}

func denyOnHeader(r *http.Request) (any, error) {
	if r.Header.Get("X-Test-Deny") != "" {
		return nil, &tether.AuthError{Status: http.StatusForbidden, Message: "denied"}
	}
	return nil, nil
}

// rawSession is a session negotiated by hand, and what the row has
// exchanged on it.
type rawSession struct {
	Session, Token string
	seq            uint64   // client messages accepted so far
	received       uint64   // server messages received so far
	expect         []string // echoes due before after()'s own
}

func (s *rawSession) query() string {
	return "session=" + url.QueryEscape(s.Session) + "&token=" + url.QueryEscape(s.Token)
}

// req builds a request for endpoint (with its own query, if any) plus the
// extra query.
func (e *badEnv) req(t *testing.T, method, endpoint, query string, body []byte) *http.Request {
	t.Helper()
	u := e.base + endpoint
	if query != "" {
		if strings.Contains(endpoint, "?") {
			u += "&" + query
		} else {
			u += "?" + query
		}
	}
	r, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return r.WithContext(ctx)
}

// answer does r and returns "STATUS FIRST-LINE-OF-BODY" ("STATUS" alone
// for an empty body).
func (e *badEnv) answer(t *testing.T, r *http.Request) string {
	t.Helper()
	resp, err := e.hc.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	return responseAnswer(resp)
}

func responseAnswer(resp *http.Response) string {
	if resp == nil {
		return "no answer"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if line := firstLine(body); line != "" {
		return fmt.Sprintf("%d %s", resp.StatusCode, line)
	}
	return fmt.Sprint(resp.StatusCode)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(s)
}

func batch(frames ...string) []byte {
	var b []byte
	for _, f := range frames {
		b = wire.AppendBatchFrame(b, []byte(f))
	}
	return b
}

func (e *badEnv) negotiate(t *testing.T, r *http.Request) *rawSession {
	t.Helper()
	resp, err := e.hc.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %s", resp.Status)
	}
	var s rawSession
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// session negotiates a fresh session for a row; it is closed when the row
// ends.
func (e *badEnv) session(t *testing.T) *rawSession {
	t.Helper()
	s := e.negotiate(t, e.req(t, "POST", "negotiate?v=1", "", nil))
	t.Cleanup(func() { e.release(t, []*rawSession{s}) })
	return s
}

// release closes sessions with a close frame, as their client would.
func (e *badEnv) release(t *testing.T, ss []*rawSession) {
	for _, s := range ss {
		r := e.req(t, "POST", "send", s.query(), batch("c1000"))
		if resp, err := e.hc.Do(r); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// badSend posts body to send on a fresh session, then checks the session.
func (e *badEnv) badSend(t *testing.T, query string, body []byte) string {
	s := e.session(t)
	q := s.query()
	if query != "" {
		q += "&" + query
	}
	return e.answer(t, e.req(t, "POST", "send", q, body)) + e.after(t, s)
}

// after reports "; session unaffected" when s still exchanges messages: it
// sends the next message, then long-polls until its echo arrives, after
// any echoes the row said are due first.
func (e *badEnv) after(t *testing.T, s *rawSession) string {
	t.Helper()
	s.seq++
	ping := fmt.Sprintf("ping %d", s.seq)
	if got := e.answer(t, e.req(t, "POST", fmt.Sprintf("send?seq=%d", s.seq), s.query(), batch("m"+ping))); got != "204" {
		return "; send after: " + got
	}
	want := append(s.expect, ping)
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		resp, err := e.hc.Do(e.req(t, "GET", fmt.Sprintf("longpoll?received=%d", s.received), s.query(), nil))
		if err != nil {
			return "; poll after: " + err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("; poll after: %d %s", resp.StatusCode, firstLine(body))
		}
		err = wire.ParseBatch(body, badMaxMessage, func(f wire.Frame) error {
			switch {
			case f.IsMessage():
				got = append(got, string(f.Message.Data))
				s.received++
			case f.Type == wire.FrameClose:
				return fmt.Errorf("closed: %d %s", f.Close.Code, f.Close.Reason)
			}
			return nil
		})
		if err != nil {
			return "; poll after: " + err.Error()
		}
	}
	s.expect = nil
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		return fmt.Sprintf("; echoes after: %q, want %q", got, want)
	}
	return "; session unaffected"
}

// ended waits for s's handler to report the code the session ended with.
func (e *badEnv) ended(t *testing.T, s *rawSession) wire.StatusCode {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v, ok := e.ends.Load(s.Session); ok {
			return v.(wire.StatusCode)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("session %s did not end", s.Session)
	return 0
}

func (e *badEnv) closed(t *testing.T, s *rawSession) string {
	return fmt.Sprintf("; session closed %d", e.ended(t, s))
}

func (e *badEnv) wsURL(s *rawSession, query string) string {
	return "ws://" + e.addr + "/rt/websocket?" + s.query() + "&" + query
}

// badWebSocket attaches a WebSocket to a fresh session, sends one message
// of typ, and reports the Tether close frame or WebSocket close it gets.
func (e *badEnv) badWebSocket(t *testing.T, query string, typ int, data []byte) string {
	s := e.session(t)
	conn, _, err := ws.DefaultDialer.Dial(e.wsURL(s, "received=0&"+query), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteMessage(typ, data); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := ""
	for got == "" {
		mt, p, err := conn.ReadMessage()
		var ce *ws.CloseError
		switch {
		case errors.As(err, &ce):
			got = fmt.Sprintf("WebSocket close %d", ce.Code)
		case err != nil:
			got = "read: " + err.Error()
		case mt == ws.TextMessage && len(p) > 0 && p[0] == 'c':
			got = "close frame " + string(p[1:])
		}
	}
	return got + e.closed(t, s)
}

// dial opens a connection to the server under test, which fails its
// reads and writes after d.
func (e *badEnv) dial(t *testing.T, d time.Duration) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(d))
	return conn
}

// rawHTTP writes req on a new connection (in the background, as a client
// still writing may be answered first) and returns the answer. With
// closeWrite, it half-closes the connection after writing.
func (e *badEnv) rawHTTP(t *testing.T, req string, closeWrite bool) string {
	t.Helper()
	conn := e.dial(t, 20*time.Second)
	defer conn.Close()
	go func() {
		io.WriteString(conn, req)
		if closeWrite {
			conn.(*net.TCPConn).CloseWrite()
		}
	}()
	return readAnswer(conn)
}

// unsentBody writes the request line and headers of a request announcing
// a body (Content-Length: 1000, unless more headers end the head and
// start a body of their own), sends none of it, and returns the answer,
// followed by "; connection closed" when the server then closes the
// connection.
func (e *badEnv) unsentBody(t *testing.T, line, more string) string {
	t.Helper()
	conn := e.dial(t, 20*time.Second)
	defer conn.Close()
	head := line + " HTTP/1.1\r\nHost: x\r\n" + more
	if !strings.Contains(more, "\r\n\r\n") {
		head += "Content-Length: 1000\r\n\r\n"
	}
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "no answer: " + err.Error()
	}
	got := responseAnswer(resp)
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return got + fmt.Sprintf("; connection not closed (%v)", err)
	}
	return got + "; connection closed"
}

// unsentBodyStream does what unsentBody does for a stream, whose answer
// goes on: it returns the connection, once the answer's headers are in.
func (e *badEnv) unsentBodyStream(t *testing.T, line string) (net.Conn, string) {
	t.Helper()
	conn := e.dial(t, 30*time.Second)
	if _, err := io.WriteString(conn, line+" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return conn, "no answer: " + err.Error()
	}
	return conn, fmt.Sprintf("%d stream", resp.StatusCode)
}

// keptConn is a connection to the server under test that has served one
// request and is kept alive for the next.
type keptConn struct {
	net.Conn
	br *bufio.Reader
}

// keptConn opens a connection and has it serve one request (a path that is
// no endpoint: 404).
func (e *badEnv) keptConn(t *testing.T) *keptConn {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	c := &keptConn{Conn: conn, br: bufio.NewReader(conn)}
	resp, err := c.do("GET /rt/none HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		conn.Close()
		t.Fatalf("first request on a kept connection: %s", resp.Status)
	}
	return c
}

// do writes one raw request and reads its answer.
func (c *keptConn) do(req string) (*http.Response, error) {
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	return http.ReadResponse(c.br, nil)
}

func readAnswer(conn net.Conn) string {
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "connection closed without an answer"
		}
		return "read: " + err.Error()
	}
	return responseAnswer(resp)
}

// trickle writes head at once, then rest one byte a second, until the
// server answers or closes; it returns the answer.
func (e *badEnv) trickle(t *testing.T, head, rest string) string {
	t.Helper()
	conn := e.dial(t, 30*time.Second)
	defer conn.Close()
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		for i := 0; i < len(rest) && !stopped.Load(); i++ {
			if _, err := conn.Write([]byte{rest[i]}); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
	got := readAnswer(conn)
	stopped.Store(true)
	conn.Close()
	<-done
	return got
}

// truncatedStream dials a client on a stream transport whose second to
// fourth responses are cut 2 KiB + 20 bytes in (inside the prelude's
// heartbeat part or event, or the first after it), then checks 20 echoes.
// The first response is left whole: a client whose first stream breaks
// before it proves itself falls back to the next transport instead.
func (e *badEnv) truncatedStream(t *testing.T, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := &truncator{rt: e.hc.Transport, path: "/rt/" + name, cuts: 3, at: transport.DefaultPreludeBytes + 20}
	c, err := client.Dial(ctx, e.base, &client.Options{
		Transports: []string{name},
		HTTPClient: &http.Client{Transport: tr},
		MinDelay:   10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(wire.StatusNormalClosure, "")
	const n = 20
	for i := range n {
		if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(padded(i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		m, err := c.Recv(ctx)
		if err != nil {
			return fmt.Sprintf("Recv %d: %v", i, err)
		}
		if want := padded(i); string(m.Data) != want {
			return fmt.Sprintf("echo %d = %.20q..., want %.20q...", i, m.Data, want)
		}
	}
	if tr.done.Load() == 0 {
		return "no stream was truncated"
	}
	return fmt.Sprintf("the client attaches again; %d echoes exact", n)
}

// padded is message i of truncatedStream: 900 bytes, so that a stream
// carries a few only.
func padded(i int) string {
	p := payload('t', i)
	return p + strings.Repeat("x", 900-len(p))
}

// truncator is an http.RoundTripper that cuts the body of responses 2 to
// cuts+1 for path after at bytes, as a proxy that drops the connection
// would.
type truncator struct {
	rt   http.RoundTripper
	path string
	at   int
	cuts int64
	seen atomic.Int64 // responses for path
	done atomic.Int64 // responses cut
}

func (tr *truncator) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := tr.rt.RoundTrip(r)
	if err != nil || r.URL.Path != tr.path || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	if n := tr.seen.Add(1); n == 1 || n > tr.cuts+1 {
		return resp, nil
	}
	tr.done.Add(1)
	resp.Body = &truncatedBody{rc: resp.Body, left: tr.at}
	return resp, nil
}

type truncatedBody struct {
	rc   io.ReadCloser
	left int
}

func (b *truncatedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.rc.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

func (b *truncatedBody) Close() error { return b.rc.Close() }
