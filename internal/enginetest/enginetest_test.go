package enginetest_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/internal/enginetest"
)

// TestMain fails the run when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// greeting dials addr and returns the engine's first line after sending
// hello (nothing for nats-server, which greets first).
func greeting(addr, hello string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if hello != "" {
		if _, err := conn.Write([]byte(hello)); err != nil {
			return "", err
		}
	}
	return bufio.NewReader(conn).ReadString('\n')
}

// TestEngines checks that each engine serves on its port, refuses
// connections once stopped or killed, and serves again on the same port
// after Restart.
func TestEngines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		start  func(testing.TB) *enginetest.Engine
		scheme string
		hello  string
		want   string
	}{
		{"redis", enginetest.RedisT, "redis://", "PING\r\n", "+PONG"},
		{"nats", enginetest.NATST, "nats://", "", "INFO "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.start(t)
			if !strings.HasPrefix(e.Addr, "127.0.0.1:") || e.URL() != tc.scheme+e.Addr {
				t.Errorf("Addr %q, URL %q", e.Addr, e.URL())
			}
			check := func(when string) {
				t.Helper()
				line, err := greeting(e.Addr, tc.hello)
				if err != nil || !strings.HasPrefix(line, tc.want) {
					t.Fatalf("%s: %q, %v; want %q", when, line, err, tc.want)
				}
			}
			check("started")
			if err := e.Restart(); err == nil {
				t.Error("Restart of a running engine = nil, want an error")
			}
			for _, end := range []struct {
				name string
				fn   func()
			}{{"Stop", e.Stop}, {"Kill", e.Kill}} {
				end.fn()
				end.fn() // a second call does nothing
				if _, err := greeting(e.Addr, tc.hello); err == nil {
					t.Fatalf("after %s the engine still answers", end.name)
				}
				if err := e.Restart(); err != nil {
					t.Fatalf("Restart after %s: %v", end.name, err)
				}
				check("restarted after " + end.name)
			}
		})
	}
}
