package wire_test

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/tetherkit/tether/wire"
)

// fuzzMax is the message limit of the fuzz targets: small, so that inputs
// over it are easy for the fuzzer to find.
const fuzzMax = 64

// checkParsed verifies what every successfully parsed frame must satisfy.
func checkParsed(t *testing.T, in []byte, f wire.Frame) {
	t.Helper()
	if f.IsMessage() {
		if len(f.Message.Data) > fuzzMax {
			t.Fatalf("ParseFrame(%q) = %d-byte message, over the limit %d", in, len(f.Message.Data), fuzzMax)
		}
		isText := f.Type == wire.FrameText || f.Type == wire.FrameTextBase64
		if isText != (f.Message.Type == wire.Text) {
			t.Fatalf("ParseFrame(%q) = %s: frame and message types disagree", in, show(f))
		}
		if isText && !utf8.Valid(f.Message.Data) {
			t.Fatalf("ParseFrame(%q) = %s: text is not UTF-8", in, show(f))
		}
	}
	if f.Type == wire.FrameClose {
		if !f.Close.Code.Valid() || len(f.Close.Reason) > wire.MaxReasonBytes || !utf8.ValidString(f.Close.Reason) {
			t.Fatalf("ParseFrame(%q) = %s: invalid close", in, show(f))
		}
	}
}

// checkError verifies that a parse error is one of the documented kinds.
func checkError(t *testing.T, in []byte, err error) {
	t.Helper()
	if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrMessageTooBig) {
		t.Fatalf("ParseFrame(%q) error %v wraps neither ErrMalformed nor ErrMessageTooBig", in, err)
	}
}

// FuzzParseFrame checks that ParseFrame never panics, that what it accepts
// is valid, and that a parsed frame re-encoded with either encoding parses to
// the same content.
func FuzzParseFrame(f *testing.F) {
	for _, tt := range parseFrameTests {
		f.Add([]byte(tt.in))
	}
	for _, tt := range parseFrameErrorTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := wire.ParseFrame(in, fuzzMax)
		if err != nil {
			checkError(t, in, err)
			return
		}
		checkParsed(t, in, got)
		for _, enc := range encodings {
			p := appendFrame(enc, got)
			again, err := wire.ParseFrame(p, fuzzMax)
			if err != nil {
				t.Fatalf("ParseFrame(%q) = %s, re-encoded as %q, which fails: %v", in, show(got), p, err)
			}
			if got.IsMessage() {
				if !sameMessage(again, got) {
					t.Fatalf("ParseFrame(%q) = %s, re-encoded as %q, parses to %s", in, show(got), p, show(again))
				}
			} else if !sameFrame(again, got) {
				t.Fatalf("ParseFrame(%q) = %s, re-encoded as %q, parses to %s", in, show(got), p, show(again))
			}
		}
	})
}

// FuzzParseBatch checks that ParseBatch never panics, that fn only sees
// valid frames, and that an accepted batch re-encoded frame by frame, with
// either encoding, parses to the same frames.
func FuzzParseBatch(f *testing.F) {
	for _, tt := range parseBatchTests {
		f.Add([]byte(tt.in))
	}
	for _, tt := range parseBatchErrorTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := parseAll(in, fuzzMax)
		if err != nil {
			checkError(t, in, err)
			return
		}
		for _, fr := range got {
			checkParsed(t, in, fr)
		}
		for _, enc := range encodings {
			var p []byte
			for _, fr := range got {
				if fr.IsMessage() {
					p = enc.AppendBatchMessage(p, fr.Message, nil)
				} else {
					p = wire.AppendBatchFrame(p, appendControl(fr))
				}
			}
			again, err := parseAll(p, fuzzMax)
			if err != nil {
				t.Fatalf("ParseBatch(%q) = %s, re-encoded as %q, which fails: %v", in, showAll(got), p, err)
			}
			if len(again) != len(got) {
				t.Fatalf("ParseBatch(%q) = %s, re-encoded as %q, parses to %s", in, showAll(got), p, showAll(again))
			}
			for i := range got {
				same := sameFrame(again[i], got[i])
				if got[i].IsMessage() {
					same = sameMessage(again[i], got[i])
				}
				if !same {
					t.Fatalf("ParseBatch(%q) = %s, re-encoded as %q, parses to %s", in, showAll(got), p, showAll(again))
				}
			}
		}
	})
}
