package sockjs_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/sockjs"
	"github.com/tetherkit/tether/wire"
)

// smallBuffers is the size the unread tests ask of the send buffers of the
// server's connections and of the receive buffers of their own, so that a
// few hundred KiB unread fill them.
const smallBuffers = 4 << 10

// smallBufferListener sets small send buffers on the connections it accepts.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(smallBuffers)
	}
	return c, err
}

// dialSmall opens a connection to addr with a small receive buffer, set
// before the connection is made, so that the window it offers stays small.
func dialSmall(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, smallBuffers)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext(ctx, "tcp", addr)
}

// TestUnreadResponses opens a SockJS session on each transport from a client
// that reads nothing of what the server writes, while the application sends
// it a message of 4 MiB (well within MaxQueuedBytes): every write to it is bounded by
// Options.WriteTimeout, so the SockJS session ends, and the Tether session
// with 1006, instead of holding its goroutines and what they buffer for as
// long as the client keeps its connection open. sockjs-go bounds WebSocket
// writes itself; its HTTP responses had no bound.
func TestUnreadResponses(t *testing.T) {
	const size = 4 << 20 // one message: whenever the poll comes, its answer carries it whole
	for _, tr := range []string{"xhr", "xhr_streaming", "eventsource", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			sent := make(chan struct{})
			ended := make(chan error, 1)
			h := tether.HandlerFunc(func(s *session.Session) {
				s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte(strings.Repeat("x", size))})
				close(sent)
				_, err := s.Recv(s.Context())
				ended <- err
			})
			srv := tether.NewServer(h, &tether.Options{MaxMessageBytes: size, MaxQueuedBytes: 4 * size, Logger: slog.New(slog.DiscardHandler)})
			mux := http.NewServeMux()
			mux.Handle("/sockjs/", sockjs.New(srv, "/sockjs", &sockjs.Options{
				WriteTimeout:    500 * time.Millisecond,
				ResponseLimit:   1 << 30, // streams would otherwise end, and their client open the next
				DisconnectDelay: testTimeout,
			}))
			hs := httptest.NewUnstartedServer(mux)
			hs.Listener = smallBufferListener{hs.Listener}
			hs.Start()
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
				hs.Close()
			}()
			addr := hs.Listener.Addr().String()
			path := strings.TrimPrefix(sessionPath(hs.URL+"/sockjs"), hs.URL)

			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			// open sends a request for the session's endpoint on a connection
			// of its own, which nothing reads unless readOpen.
			open := func(method string, readOpen bool) {
				conn, err := dialSmall(ctx, addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, conn)
				conn.SetDeadline(time.Now().Add(testTimeout))
				if _, err := io.WriteString(conn, method+" "+path+"/"+tr+" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				if readOpen {
					resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
					if err != nil {
						t.Fatal(err)
					}
					if b, _ := io.ReadAll(resp.Body); string(b) != "o\n" {
						t.Fatalf("first poll: %q, want the open frame", b)
					}
				}
			}
			switch tr {
			case "xhr":
				// The first poll opens the session; the second carries the
				// message, whether it waits in sockjs-go's buffer when the
				// poll comes or comes while the poll waits.
				open("POST", true)
				select {
				case <-sent:
				case <-ctx.Done():
					t.Fatal("the application could not send")
				}
				// Most often the message then waits in sockjs-go's buffer
				// when the poll comes, and goes out as the poll attaches.
				time.Sleep(100 * time.Millisecond)
				open("POST", false)
			case "xhr_streaming":
				open("POST", false)
			case "eventsource":
				open("GET", false)
			case "websocket":
				d := websocket.Dialer{NetDialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
					return dialSmall(ctx, addr)
				}}
				conn, _, err := d.DialContext(ctx, "ws://"+addr+path+"/websocket", nil)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, conn.NetConn())
			}
			select {
			case err := <-ended:
				if code := wire.CloseStatus(err); code != wire.StatusAbnormalClosure {
					t.Errorf("the session ended with %v, want 1006", err)
				}
			case <-ctx.Done():
				t.Fatalf("the session did not end while its client read nothing")
			}
		})
	}
}

// TestPipelinedUnread sends many requests on one connection and reads none
// of the answers: once the network's buffers are full, the server's write
// of the next answer waits for the client, for WriteTimeout at most; then
// the server closes the connection, and the client's writes fail.
func TestPipelinedUnread(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := tether.NewServer(echo, &tether.Options{Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	mux.Handle("/sockjs/", sockjs.New(srv, "/sockjs", &sockjs.Options{WriteTimeout: 500 * time.Millisecond}))
	hs := httptest.NewUnstartedServer(mux)
	hs.Listener = smallBufferListener{hs.Listener}
	hs.Start()
	defer hs.Close()
	defer srv.Close()
	for _, req := range []string{
		"GET /sockjs/info HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /sockjs/000/abc/nope HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /sockjs/000/abc/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n[\"x\"]",
	} {
		conn, err := dialSmall(ctx, hs.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetWriteDeadline(time.Now().Add(testTimeout))
		// Until the server closes the connection (or the test's bound).
		var err2 error
		for err2 == nil {
			_, err2 = io.WriteString(conn, strings.Repeat(req, 1000))
		}
		if errors.Is(err2, os.ErrDeadlineExceeded) {
			t.Errorf("%q: the server still read requests from a client that read no answer", strings.Fields(req)[1])
		}
	}
}

// TestHeadersKept opens many SockJS sessions whose first request carries 60
// KiB of headers: sockjs-go keeps each session's latest request for as long
// as the session lives, and the bridge hands it the request with its
// headers cut to what a Tether session keeps (tether.KeptHeaderBytes), so a
// session holds about what a Tether session does, while Authorize sees
// every header.
func TestHeadersKept(t *testing.T) {
	const sessions = 200
	e := &env{transport: "xhr"}
	ctx := e.context(t)
	pad := strings.Repeat("p", 60<<10)
	authorized := 0
	var mu sync.Mutex
	authorize := func(r *http.Request) (any, error) {
		if r.Header.Get("X-Pad") != pad {
			return nil, &tether.AuthError{Status: http.StatusForbidden, Message: "no X-Pad"}
		}
		mu.Lock()
		authorized++
		mu.Unlock()
		return nil, nil
	}
	_, base := e.server(t, echo, &tether.Options{Authorize: authorize, Logger: slog.New(slog.DiscardHandler)}, nil)
	before := liveHeap()
	for range sessions {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, sessionPath(base)+"/xhr", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("X-Pad", pad)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "o\n" {
			t.Fatalf("first poll: %q", b)
		}
	}
	// Every session has been authorized once its Handler runs.
	for {
		mu.Lock()
		n := authorized
		mu.Unlock()
		if n == sessions {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d sessions authorized, want %d", n, sessions)
		case <-time.After(10 * time.Millisecond):
		}
	}
	http.DefaultClient.CloseIdleConnections()
	growth := liveHeap() - before
	t.Logf("%d SockJS sessions opened with %d bytes of headers: live heap %+d bytes, %d per session", sessions, len(pad), growth, growth/sessions)
	if limit := int64(sessions * (tether.KeptHeaderBytes + 16<<10)); growth > limit {
		t.Errorf("live heap grew by %d bytes, want at most %d (KeptHeaderBytes and 16 KiB per session): sockjs-go keeps every header", growth, limit)
	}
}
