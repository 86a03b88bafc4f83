package wire_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tetherkit/tether/wire"
)

// parseCompactAll collects every frame of a compact batch, copying payloads.
func parseCompactAll(p []byte, max int) ([]wire.Frame, error) {
	var frames []wire.Frame
	err := wire.ParseCompactBatch(p, max, func(f wire.Frame) error {
		f.Message.Data = append([]byte(nil), f.Message.Data...)
		frames = append(frames, f)
		return nil
	})
	return frames, err
}

var compactBatchTests = []struct {
	in   string
	want string
}{
	{"", "[]"},
	{"\x06mhello\x01h", `[m(text "hello") h()]`},
	{"\x03a12", "[a(12)]"},
	{"\x04b\x00\x01\xff", `[b(binary "\x00\x01\xff")]`},
	{"\x0ac1000 done", `[c(1000 "done")]`},
	{"\x80\x01m" + strings.Repeat("x", 127), `[m(text "` + strings.Repeat("x", 127) + `")]`},
}

func TestParseCompactBatch(t *testing.T) {
	for _, tt := range compactBatchTests {
		frames, err := parseCompactAll([]byte(tt.in), 1<<10)
		if err != nil {
			t.Errorf("ParseCompactBatch(%q) error %v", tt.in, err)
			continue
		}
		if got := showAll(frames); got != tt.want {
			t.Errorf("ParseCompactBatch(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

var compactBatchErrors = []string{
	"\x00",                 // zero length
	"\x80\x00h",            // not the shortest form
	"\x80",                 // length cut short
	"\x80\x80\x80\x80\x80", // length over 5 bytes
	"\x05mab",              // frame cut short
	"\x01x",                // unknown frame type
	"\x02h!",               // heartbeat with a payload
}

func TestParseCompactBatchErrors(t *testing.T) {
	for _, in := range compactBatchErrors {
		_, err := parseCompactAll([]byte(in), 1<<10)
		if !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("ParseCompactBatch(%q) error %v, want ErrMalformed", in, err)
		}
	}
	_, err := parseCompactAll([]byte("\x03mab"), 1)
	if !errors.Is(err, wire.ErrMessageTooBig) {
		t.Errorf("ParseCompactBatch over the limit: error %v, want ErrMessageTooBig", err)
	}
}

func TestCompactRoundTrip(t *testing.T) {
	msgs := []wire.Message{
		{Type: wire.Text, Data: []byte("hello")},
		{Type: wire.Binary, Data: bytes.Repeat([]byte{0x80}, 300)},
		{Type: wire.Text, Data: bytes.Repeat([]byte("y"), 20000)},
		{Type: wire.Binary, Data: []byte{}},
	}
	var b []byte
	for _, m := range msgs {
		b = wire.RawEncoding.AppendCompactMessage(b, m, nil)
	}
	b = wire.AppendCompactFrame(b, wire.AppendHeartbeat(nil))
	frames, err := parseCompactAll(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != len(msgs)+1 || frames[len(msgs)].Type != wire.FrameHeartbeat {
		t.Fatalf("round trip gave %s", showAll(frames))
	}
	for i, m := range msgs {
		if got := frames[i].Message; got.Type != m.Type || !bytes.Equal(got.Data, m.Data) {
			t.Errorf("message %d: got %v %d bytes, want %v %d bytes", i, got.Type, len(got.Data), m.Type, len(m.Data))
		}
	}
	// 64-byte text: one length byte and the type byte.
	if n := len(wire.RawEncoding.AppendCompactMessage(nil, wire.Message{Type: wire.Text, Data: make([]byte, 64)}, nil)); n != 66 {
		t.Errorf("64-byte text message takes %d bytes in a compact batch, want 66", n)
	}
}

// FuzzParseCompactBatch checks that ParseCompactBatch never panics, that
// what it accepts is valid, and that the frames it accepts re-encode to the
// same bytes' content.
func FuzzParseCompactBatch(f *testing.F) {
	for _, tt := range compactBatchTests {
		f.Add([]byte(tt.in))
	}
	for _, in := range compactBatchErrors {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var frames []wire.Frame
		err := wire.ParseCompactBatch(in, fuzzMax, func(f wire.Frame) error {
			checkParsed(t, in, f)
			frames = append(frames, f)
			return nil
		})
		if err != nil {
			checkError(t, in, err)
			return
		}
		var out []byte
		for _, f := range frames {
			if f.IsMessage() {
				out = wire.RawEncoding.AppendCompactMessage(out, f.Message, nil)
			}
		}
		again, err := parseCompactAll(out, fuzzMax)
		if err != nil {
			t.Fatalf("re-encoded batch %q: %v", out, err)
		}
		k := 0
		for _, f := range frames {
			if !f.IsMessage() {
				continue
			}
			if g := again[k].Message; g.Type != f.Message.Type || !bytes.Equal(g.Data, f.Message.Data) {
				t.Fatalf("message %d of %q changed in a round trip", k, in)
			}
			k++
		}
	})
}
