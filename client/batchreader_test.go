package client

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tetherkit/tether/wire"
)

// batchBody returns a batch of n text messages "m0", "m1", ... in either
// framing, and the messages.
func batchBody(n int, compact bool) ([]byte, []string) {
	var body []byte
	var want []string
	for i := range n {
		m := "m" + strings.Repeat("x", i%300) + string(rune('0'+i%10))
		want = append(want, m)
		frame := append([]byte{byte(wire.FrameText)}, m...)
		if compact {
			body = wire.AppendCompactFrame(body, frame)
		} else {
			body = wire.AppendBatchFrame(body, frame)
		}
	}
	return body, want
}

// readAll reads body with readBatchBody and returns the messages handed over.
func readAll(t *testing.T, body io.Reader, compact bool, maxMessage int) ([]string, error) {
	t.Helper()
	d := newRequestDeadline(context.Background(), 10*time.Second)
	defer d.close()
	var got []string
	err := readBatchBody(d, body, compact, maxMessage, func(f wire.Frame) error {
		got = append(got, string(f.Message.Data))
		return nil
	})
	return got, err
}

// TestReadBatchBody reads batches one byte at a time, in chunks, and cut
// at every frame: every frame before the cut is handed over, each once, in
// order, and what follows the last complete frame is reported.
func TestReadBatchBody(t *testing.T) {
	for _, compact := range []bool{false, true} {
		body, want := batchBody(500, compact)
		for name, r := range map[string]io.Reader{
			"whole":       strings.NewReader(string(body)),
			"byte a read": iotest.OneByteReader(strings.NewReader(string(body))),
			"half a read": iotest.HalfReader(strings.NewReader(string(body))),
		} {
			got, err := readAll(t, r, compact, 1024)
			if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("compact=%v %s: %d messages, %v; want %d, nil", compact, name, len(got), err, len(want))
			}
		}
		// Cut at every byte of the first frames and well into the body.
		for cut := 1; cut < len(body); cut += 1 + cut/7 {
			cutErr := errors.New("connection reset")
			got, err := readAll(t, iotest.HalfReader(io.MultiReader(strings.NewReader(string(body[:cut])), iotest.ErrReader(cutErr))), compact, 1024)
			if !errors.Is(err, cutErr) {
				t.Fatalf("compact=%v cut at %d: error %v, want the cut", compact, cut, err)
			}
			n := 0
			for i := 0; ; i++ {
				var next []byte
				next, _ = batchBody(i+1, compact)
				if len(next) > cut {
					break
				}
				n = i + 1
			}
			if strings.Join(got, ",") != strings.Join(want[:n], ",") {
				t.Fatalf("compact=%v cut at %d: %d messages, want the %d before the cut", compact, cut, len(got), n)
			}
		}
	}
}

// TestReadBatchBodyFaults: a body that ends inside a frame, a malformed
// prefix and a frame over the message limit are reported, after the frames
// before them were handed over.
func TestReadBatchBodyFaults(t *testing.T) {
	ok := "2:ma"
	for _, tt := range []struct {
		name, body string
		compact    bool
		tooBig     bool
	}{
		{"ends inside a frame", ok + "9:mab", false, false},
		{"ends inside a prefix", ok + "12", false, false},
		{"letter in a prefix", ok + "x:ma" + strings.Repeat("2:ma", 10000), false, false},
		{"leading zero", ok + "02:ma", false, false},
		{"prefix too long", ok + strings.Repeat("9", 12) + ":", false, false},
		{"frame over the limit", ok + "100000:m", false, true},
		{"compact frame over the limit", "\x02ma\x80\x80\x04m", true, true},
		{"compact prefix too long", "\x02ma\x80\x80\x80\x80\x80\x80", true, false},
		{"compact zero length", "\x02ma\x00", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, iotest.OneByteReader(strings.NewReader(tt.body)), tt.compact, 1024)
			if len(got) != 1 || got[0] != "a" {
				t.Errorf("handed over %q, want [a]", got)
			}
			if err == nil || errors.Is(err, wire.ErrMessageTooBig) != tt.tooBig {
				t.Errorf("error %v, want one (ErrMessageTooBig: %v)", err, tt.tooBig)
			}
		})
	}
}
