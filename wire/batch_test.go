package wire_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tetherkit/tether/wire"
)

// parseAll collects every frame of a batch, copying payloads so they outlive p.
func parseAll(p []byte, max int) ([]wire.Frame, error) {
	var frames []wire.Frame
	err := wire.ParseBatch(p, max, func(f wire.Frame) error {
		f.Message.Data = append([]byte(nil), f.Message.Data...)
		frames = append(frames, f)
		return nil
	})
	return frames, err
}

func showAll(frames []wire.Frame) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		parts[i] = show(f)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func sameFrames(a, b []wire.Frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameFrame(a[i], b[i]) {
			return false
		}
	}
	return true
}

// batchOf writes frames given as already-encoded strings into one batch.
func batchOf(frames ...string) string {
	var p []byte
	for _, f := range frames {
		p = wire.AppendBatchFrame(p, []byte(f))
	}
	return string(p)
}

var parseBatchTests = []struct {
	in   string
	want []wire.Frame
}{
	{"", nil},
	{"1:h", []wire.Frame{heartbeat}},
	// The example in PROTOCOL.md section 4.1, whose text says "2:h" for the
	// one-byte heartbeat.
	{"6:mhello3:a121:h", []wire.Frame{text("hello"), ack(12), heartbeat}},
	{"1:m", []wire.Frame{text("")}},
	{"1:b1:B", []wire.Frame{binary(""), binaryB64("")}},
	// Payloads that look like length prefixes are only payload.
	{"6:b1:2:31:h", []wire.Frame{binary("1:2:3"), heartbeat}},
	{"3:b0:1:h", []wire.Frame{binary("0:"), heartbeat}},
	{"4:b\x00\xff\n", []wire.Frame{binary("\x00\xff\n")}},
	{"12:mhello world", []wire.Frame{text("hello world")}},
	{"9:c1000 bye1:h", []wire.Frame{closeFrame(1000, "bye"), heartbeat}},
	{"5:BAP8=", []wire.Frame{binaryB64("\x00\xff")}},
	{batchOf("M"+b64("a\nb"), "a0", "b"+allBytes[:testMax]),
		[]wire.Frame{textB64("a\nb"), ack(0), binary(allBytes[:testMax])}},
	{batchOf("m"+atLimit, "b"+atLimit), []wire.Frame{text(atLimit), binary(atLimit)}},
	{strings.Repeat("1:h", 100), func() []wire.Frame {
		fs := make([]wire.Frame, 100)
		for i := range fs {
			fs[i] = heartbeat
		}
		return fs
	}()},
}

func TestParseBatch(t *testing.T) {
	for _, tt := range parseBatchTests {
		got, err := parseAll([]byte(tt.in), testMax)
		if err != nil {
			t.Errorf("ParseBatch(%q) returned error %v, want %s", tt.in, err, showAll(tt.want))
			continue
		}
		if !sameFrames(got, tt.want) {
			t.Errorf("ParseBatch(%q) = %s, want %s", tt.in, showAll(got), showAll(tt.want))
		}
	}
}

var parseBatchErrorTests = []struct {
	in   string
	want error
	// before is how many frames fn sees before the fault.
	before int
}{
	// Length prefixes.
	{"0:", wire.ErrMalformed, 0},
	{"0:h", wire.ErrMalformed, 0},
	{"00:h", wire.ErrMalformed, 0},
	{"01:h", wire.ErrMalformed, 0},
	{"001:h", wire.ErrMalformed, 0},
	{":h", wire.ErrMalformed, 0},
	{":", wire.ErrMalformed, 0},
	{"h", wire.ErrMalformed, 0},
	{"1", wire.ErrMalformed, 0},
	{"12", wire.ErrMalformed, 0},
	{"1h", wire.ErrMalformed, 0},
	{"1;h", wire.ErrMalformed, 0},
	{" 1:h", wire.ErrMalformed, 0},
	{"1 :h", wire.ErrMalformed, 0},
	{"+1:h", wire.ErrMalformed, 0},
	{"-1:h", wire.ErrMalformed, 0},
	{"0x1:h", wire.ErrMalformed, 0},
	{"１:h", wire.ErrMalformed, 0},                    // fullwidth digit one
	{"12345678901:h", wire.ErrMalformed, 0},          // 11 digits
	{"18446744073709551617:h", wire.ErrMalformed, 0}, // 20 digits
	{strings.Repeat("9", 100) + ":h", wire.ErrMalformed, 0},
	{strings.Repeat("9", 100), wire.ErrMalformed, 0},

	// Truncation.
	{"1:", wire.ErrMalformed, 0},
	{"2:h", wire.ErrMalformed, 0},
	{"6:mhell", wire.ErrMalformed, 0},
	{"9999999999:h", wire.ErrMalformed, 0}, // 10 digits: a valid prefix, too few bytes
	{"1000000000:h", wire.ErrMalformed, 0},
	{"1:h1", wire.ErrMalformed, 1},
	{"1:h1:", wire.ErrMalformed, 1},
	{"1:h6:mhello3:a1", wire.ErrMalformed, 2},
	{"1:h\n", wire.ErrMalformed, 1},
	{"1:h ", wire.ErrMalformed, 1},

	// Malformed frames inside a well-formed batch.
	{"1:x", wire.ErrMalformed, 0},
	{"2:h ", wire.ErrMalformed, 0},
	{"3:a011:h", wire.ErrMalformed, 0},
	{"6:mhello3:a122:h", wire.ErrMalformed, 2}, // as printed in PROTOCOL.md 4.1
	{"1:a", wire.ErrMalformed, 0},
	{"5:c10061:h", wire.ErrMalformed, 0},
	{"1:h2:m\xff", wire.ErrMalformed, 1},
	{"1:h5:MaGk=\n", wire.ErrMalformed, 2},
	{"6:MaGk=\n", wire.ErrMalformed, 0},
	{"4:BAP8", wire.ErrMalformed, 0},
	{batchOf("c1000 " + reason124), wire.ErrMalformed, 0},

	// Messages over the limit.
	{batchOf("m" + overLimit), wire.ErrMessageTooBig, 0},
	{batchOf("h", "b"+overLimit), wire.ErrMessageTooBig, 1},
	{batchOf("M" + b64(overLimit)), wire.ErrMessageTooBig, 0},
	{batchOf("h", "h", "B"+b64(overLimitMore)), wire.ErrMessageTooBig, 2},
}

func TestParseBatchErrors(t *testing.T) {
	for _, tt := range parseBatchErrorTests {
		got, err := parseAll([]byte(tt.in), testMax)
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseBatch(%q) = %s, %v, want error %v", tt.in, showAll(got), err, tt.want)
		}
		if len(got) != tt.before {
			t.Errorf("ParseBatch(%q) called fn for %s before failing, want %d frames", tt.in, showAll(got), tt.before)
		}
	}
}

// TestParseBatchStopsOnCallbackError checks that an error from fn ends the
// parse and is returned as is.
func TestParseBatchStopsOnCallbackError(t *testing.T) {
	errStop := errors.New("stop")
	in := []byte("1:h6:mhello1:x")
	calls := 0
	err := wire.ParseBatch(in, testMax, func(f wire.Frame) error {
		calls++
		if f.Type == wire.FrameText {
			return fmt.Errorf("wrapped: %w", errStop)
		}
		return nil
	})
	if !errors.Is(err, errStop) || calls != 2 {
		t.Errorf("ParseBatch(%q) with a failing fn = %v after %d calls, want %v after 2", in, err, calls, errStop)
	}
}

var appendBatchFrameTests = []struct {
	frames []string
	want   string
}{
	{nil, ""},
	{[]string{"h"}, "1:h"},
	{[]string{"mhello", "a12", "h"}, "6:mhello3:a121:h"},
	{[]string{"m" + strings.Repeat("x", 9)}, "10:m" + strings.Repeat("x", 9)},
	{[]string{"b" + strings.Repeat("\x00", 99)}, "100:b" + strings.Repeat("\x00", 99)},
}

func TestAppendBatchFrame(t *testing.T) {
	for _, tt := range appendBatchFrameTests {
		if got := batchOf(tt.frames...); got != tt.want {
			t.Errorf("AppendBatchFrame(%q...) = %q, want %q", tt.frames, got, tt.want)
		}
	}
}

// TestAppendBatchMessage: a message is framed the same, encoded on the spot
// or taken from the Frames it shares with other sessions; a batch and a
// compact batch share the frame of one encoding.
func TestAppendBatchMessage(t *testing.T) {
	for _, enc := range encodings {
		for _, m := range roundTripMessages {
			shared := new(wire.Frames)
			for _, frames := range []*wire.Frames{nil, shared, shared} {
				got := enc.AppendBatchMessage([]byte("1:h"), m, frames)
				want := wire.AppendBatchFrame([]byte("1:h"), enc.AppendMessage(nil, m))
				if string(got) != string(want) {
					t.Errorf("Encoding(%d).AppendBatchMessage(1:h, %v %q, %p) = %q, want %q", enc, m.Type, m.Data, frames, got, want)
				}
				got = enc.AppendCompactMessage([]byte("h"), m, frames)
				want = wire.AppendCompactFrame([]byte("h"), enc.AppendMessage(nil, m))
				if string(got) != string(want) {
					t.Errorf("Encoding(%d).AppendCompactMessage(h, %v %q, %p) = %q, want %q", enc, m.Type, m.Data, frames, got, want)
				}
			}
			first, again := enc.SharedFrame(m, shared), enc.SharedFrame(m, shared)
			if len(first) > 0 && &first[0] != &again[0] {
				t.Errorf("Encoding(%d).SharedFrame(%v %q) built the frame twice", enc, m.Type, m.Data)
			}
		}
	}
}

// TestBatchRoundTrip writes every message and control frame into one batch
// with each encoding and parses it back.
func TestBatchRoundTrip(t *testing.T) {
	for _, enc := range encodings {
		var p []byte
		var want []wire.Frame
		for i, m := range roundTripMessages {
			p = enc.AppendBatchMessage(p, m, nil)
			want = append(want, wire.Frame{Type: enc.MessageFrameType(m), Message: m})
			c := roundTripControls[i%len(roundTripControls)]
			p = wire.AppendBatchFrame(p, appendControl(c))
			want = append(want, c)
		}
		got, err := parseAll(p, testMax)
		if err != nil {
			t.Errorf("ParseBatch(%q) returned error %v", p, err)
			continue
		}
		if !sameFrames(got, want) {
			t.Errorf("ParseBatch(%q) = %s, want %s", p, showAll(got), showAll(want))
		}
	}
}

// appendControl encodes an ack, heartbeat or close frame.
func appendControl(f wire.Frame) []byte {
	switch f.Type {
	case wire.FrameAck:
		return wire.AppendAck(nil, f.Received)
	case wire.FrameClose:
		return wire.AppendClose(nil, f.Close)
	}
	return wire.AppendHeartbeat(nil)
}

// appendFrame re-encodes any parsed frame with enc.
func appendFrame(enc wire.Encoding, f wire.Frame) []byte {
	if f.IsMessage() {
		return enc.AppendMessage(nil, f.Message)
	}
	return appendControl(f)
}
