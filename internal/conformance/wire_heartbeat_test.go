package conformance_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
)

// TestWireHeartbeatParameter: an attach with heartbeatMs gets that
// heartbeat interval on its connection, on every transport (PROTOCOL.md
// section 5.3). The server's own interval is an hour, so every heartbeat
// after the first of a stream, and every poll answered, comes from the
// parameter; a wait that ended by its bound would fail the test.
func TestWireHeartbeatParameter(t *testing.T) {
	e := newWireEnv(t, &tether.Options{HeartbeatInterval: time.Hour})
	t.Run("longpoll", func(t *testing.T) {
		t.Parallel()
		s := e.negotiate(t)
		if got := e.exact(t, "GET", "longpoll?received=0&heartbeatMs=1000&"+s.query(), nil, nil); got != "200 1:h" {
			t.Errorf("poll = %q, want a heartbeat: 200 1:h", got)
		}
	})
	for _, c := range []struct{ name, heartbeat string }{
		{"sse", "\ndata:h\n\n"},
		{"streaming", "Content-Length: 3\r\n\r\n1:h\r\n--"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := e.negotiate(t)
			resp := e.do(t, "GET", c.name+"?received=0&heartbeatMs=1000&"+s.query(), nil, nil)
			defer resp.Body.Close()
			// The first heartbeat comes with the prelude; the second after
			// the interval asked for.
			got, err := readUntilCount(resp.Body, c.heartbeat, 2)
			if err != nil {
				t.Errorf("%v; got %q, want two heartbeats %q", err, got, c.heartbeat)
			}
		})
	}
	t.Run("websocket", func(t *testing.T) {
		t.Parallel()
		s := e.negotiate(t)
		conn := e.wsDial(t, s, "received=0&seq=1&heartbeatMs=1000")
		// The client keeps its side alive too, as it must with this
		// interval (or be taken for dead, below).
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
					if conn.WriteMessage(ws.TextMessage, []byte("h")) != nil {
						return
					}
				}
			}
		}()
		for {
			_, p, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("no heartbeat: %v", err)
			}
			if string(p) == "h" {
				return
			}
		}
	})
	t.Run("websocket silent client", func(t *testing.T) {
		t.Parallel()
		// A client that writes nothing for twice the interval it asked
		// for is dead to the server, which drops the connection.
		s := e.negotiate(t)
		conn := e.wsDial(t, s, "received=0&seq=1&heartbeatMs=1000")
		for {
			_, _, err := conn.ReadMessage()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a silent WebSocket open: %v", err)
			}
			if err != nil {
				return
			}
		}
	})
}

// TestWireHeartbeatParameterNeverLonger: a heartbeatMs longer than the
// negotiated interval is taken as the negotiated one: the poll is answered
// after a second, not an hour.
func TestWireHeartbeatParameterNeverLonger(t *testing.T) {
	e := newWireEnv(t, &tether.Options{HeartbeatInterval: time.Second})
	s := e.negotiate(t)
	if got := e.exact(t, "GET", "longpoll?received=0&heartbeatMs=3600000&"+s.query(), nil, nil); got != "200 1:h" {
		t.Errorf("poll = %q, want a heartbeat: 200 1:h", got)
	}
}

// readUntilCount reads r until want has appeared n times, and returns what
// it read.
func readUntilCount(r interface{ Read([]byte) (int, error) }, want string, n int) (string, error) {
	var got strings.Builder
	buf := make([]byte, 4096)
	for strings.Count(got.String(), want) < n {
		k, err := r.Read(buf)
		got.Write(buf[:k])
		if err != nil && strings.Count(got.String(), want) < n {
			return got.String(), err
		}
	}
	return got.String(), nil
}
