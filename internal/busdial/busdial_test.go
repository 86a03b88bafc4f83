package busdial_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/internal/busdial"
	"github.com/tetherkit/tether/internal/enginetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDialRequest dials each engine by its URL and makes a request across
// two connections: what a node of one process asks another.
func TestDialRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *enginetest.Engine
	}{
		{"redis", enginetest.RedisT},
		{"nats", enginetest.NATST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := tc.start(t)
			server, closeServer, err := busdial.Dial(eng.URL(), nil)
			if err != nil {
				t.Fatalf("Dial(%q): %v", eng.URL(), err)
			}
			defer closeServer()
			client, closeClient, err := busdial.Dial(eng.URL(), nil)
			if err != nil {
				t.Fatalf("Dial(%q): %v", eng.URL(), err)
			}
			defer closeClient()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sub, err := server.Serve(ctx, "busdial.test", func(_ context.Context, p []byte) []byte { return append([]byte("re: "), p...) })
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			got, err := client.Request(ctx, "busdial.test", []byte("ping"))
			if err != nil || string(got) != "re: ping" {
				t.Fatalf("Request = %q, %v; want \"re: ping\"", got, err)
			}
		})
	}
}

// TestDialBadURL: a URL of another scheme, or a malformed one, is an error,
// and nothing is left open.
func TestDialBadURL(t *testing.T) {
	for _, url := range []string{"", "http://127.0.0.1:6379", "redis://127.0.0.1:notaport/x/y", "nats://127.0.0.1:1", "memory:"} {
		if bus, _, err := busdial.Dial(url, nil); err == nil {
			bus.Close()
			t.Errorf("Dial(%q): no error", url)
		}
	}
}
