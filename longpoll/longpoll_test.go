package longpoll_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// poll GETs {prefix}longpoll with query and returns the Content-Type and
// the body.
func poll(t *testing.T, url string) (string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("poll: %s %q", resp.Status, body)
	}
	return resp.Header.Get("Content-Type"), body
}

// TestFramings polls the same messages in batches and, when asked with
// compact=1, in compact batches marked as such.
func TestFramings(t *testing.T) {
	base, sess, s := conformance.RawSession(t, "longpoll", nil)
	msgs := []wire.Message{
		{Type: wire.Text, Data: []byte("hello")},
		{Type: wire.Binary, Data: make([]byte, 200)},
	}
	for _, m := range msgs {
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		query, contentType string
		parse              func([]byte, int, func(wire.Frame) error) error
	}{
		{"&received=0", "application/octet-stream", wire.ParseBatch},
		{"&received=0&compact=1", "application/octet-stream; compact=1", wire.ParseCompactBatch},
	} {
		ct, body := poll(t, base+"longpoll?"+sess+tt.query)
		if ct != tt.contentType {
			t.Errorf("query %q: Content-Type %q, want %q", tt.query, ct, tt.contentType)
		}
		i := 0
		err := tt.parse(body, 1<<10, func(f wire.Frame) error {
			if i >= len(msgs) || !f.IsMessage() || f.Message.Type != msgs[i].Type || string(f.Message.Data) != string(msgs[i].Data) {
				t.Errorf("query %q: frame %d is %c %q", tt.query, i, f.Type, f.Message.Data)
			}
			i++
			return nil
		})
		if err != nil || i != len(msgs) {
			t.Errorf("query %q: %d frames, want %d: %v", tt.query, i, len(msgs), err)
		}
	}
}
