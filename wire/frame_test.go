package wire_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tetherkit/tether/wire"
)

// testMax is the message limit the tables use unless a case says otherwise.
const testMax = 64

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func text(s string) wire.Frame {
	return wire.Frame{Type: wire.FrameText, Message: wire.Message{Type: wire.Text, Data: []byte(s)}}
}

func textB64(s string) wire.Frame {
	f := text(s)
	f.Type = wire.FrameTextBase64
	return f
}

func binary(s string) wire.Frame {
	return wire.Frame{Type: wire.FrameBinary, Message: wire.Message{Type: wire.Binary, Data: []byte(s)}}
}

func binaryB64(s string) wire.Frame {
	f := binary(s)
	f.Type = wire.FrameBinaryBase64
	return f
}

func ack(n uint64) wire.Frame {
	return wire.Frame{Type: wire.FrameAck, Received: n}
}

var heartbeat = wire.Frame{Type: wire.FrameHeartbeat}

func closeFrame(code wire.StatusCode, reason string) wire.Frame {
	return wire.Frame{Type: wire.FrameClose, Close: wire.CloseError{Code: code, Reason: reason}}
}

// show formats a frame for test messages: the type byte, then what it carries.
func show(f wire.Frame) string {
	switch {
	case f.IsMessage():
		return fmt.Sprintf("%c(%v %q)", f.Type, f.Message.Type, f.Message.Data)
	case f.Type == wire.FrameAck:
		return fmt.Sprintf("a(%d)", f.Received)
	case f.Type == wire.FrameClose:
		return fmt.Sprintf("c(%d %q)", f.Close.Code, f.Close.Reason)
	}
	return fmt.Sprintf("%c()", f.Type)
}

// sameFrame reports whether a and b carry the same content. A nil and an
// empty payload are the same.
func sameFrame(a, b wire.Frame) bool {
	return a.Type == b.Type &&
		a.Message.Type == b.Message.Type &&
		bytes.Equal(a.Message.Data, b.Message.Data) &&
		a.Received == b.Received &&
		a.Close == b.Close
}

// sameMessage reports whether a and b are the same application message,
// whatever frame type carried them.
func sameMessage(a, b wire.Frame) bool {
	return a.IsMessage() && b.IsMessage() &&
		a.Message.Type == b.Message.Type && bytes.Equal(a.Message.Data, b.Message.Data)
}

var (
	reason123   = strings.Repeat("r", wire.MaxReasonBytes)
	reason124   = strings.Repeat("r", wire.MaxReasonBytes+1)
	reasonRunes = strings.Repeat("é", wire.MaxReasonBytes/2) + "x" // 123 bytes, 62 runes
	allBytes    = func() string {
		var b [256]byte
		for i := range b {
			b[i] = byte(i)
		}
		return string(b[:])
	}()
	atLimit       = strings.Repeat("x", testMax)
	overLimit     = strings.Repeat("x", testMax+1)
	overLimitMore = strings.Repeat("x", 10*testMax)
)

var parseFrameTests = []struct {
	in   string
	max  int
	want wire.Frame
}{
	// Text, raw.
	{"mhello", testMax, text("hello")},
	{"m", testMax, text("")},
	{"mhé 世界 🙂", testMax, text("hé 世界 🙂")},
	{"m\x00", testMax, text("\x00")},
	{"mline\nbreak\r", testMax, text("line\nbreak\r")},
	{"m" + atLimit, testMax, text(atLimit)},
	{"m", 0, text("")},

	// Text, base64.
	{"M" + b64("hello"), testMax, textB64("hello")},
	{"M", testMax, textB64("")},
	{"M" + b64("a\nb\r"), testMax, textB64("a\nb\r")},
	{"M" + b64("hé 世界"), testMax, textB64("hé 世界")},
	{"M" + b64(atLimit), testMax, textB64(atLimit)},
	{"M" + b64(atLimit[1:]), testMax, textB64(atLimit[1:])},
	{"M" + b64(atLimit[2:]), testMax, textB64(atLimit[2:])},
	{"M" + b64("x"), 1, textB64("x")},
	{"M" + b64("hi"), math.MaxInt, textB64("hi")},

	// Binary, raw.
	{"b\x00\xff", testMax, binary("\x00\xff")},
	{"b", testMax, binary("")},
	{"b" + allBytes, 256, binary(allBytes)},
	{"b12:ab", testMax, binary("12:ab")},
	{"b" + atLimit, testMax, binary(atLimit)},

	// Binary, base64.
	{"BAP8=", testMax, binaryB64("\x00\xff")},
	{"B", testMax, binaryB64("")},
	{"B" + b64(allBytes), 256, binaryB64(allBytes)},
	{"B" + b64(atLimit), testMax, binaryB64(atLimit)},
	{"B" + b64("xyz"), math.MaxInt, binaryB64("xyz")},

	// Acknowledgements.
	{"a0", testMax, ack(0)},
	{"a1", testMax, ack(1)},
	{"a17", testMax, ack(17)},
	{"a1000000", testMax, ack(1000000)},
	{"a18446744073709551615", testMax, ack(math.MaxUint64)},

	// Heartbeat.
	{"h", testMax, heartbeat},

	// Close.
	{"c1000", testMax, closeFrame(1000, "")},
	{"c1000 bye", testMax, closeFrame(1000, "bye")},
	{"c1000 ", testMax, closeFrame(1000, "")},
	{"c1000  two spaces ", testMax, closeFrame(1000, " two spaces ")},
	{"c1001 going away", testMax, closeFrame(1001, "going away")},
	{"c1003", testMax, closeFrame(1003, "")},
	{"c1007", testMax, closeFrame(1007, "")},
	{"c1009 message too big", testMax, closeFrame(1009, "message too big")},
	{"c1014", testMax, closeFrame(1014, "")},
	{"c3000", testMax, closeFrame(3000, "")},
	{"c4000 resume gap", testMax, closeFrame(4000, "resume gap")},
	{"c4003", testMax, closeFrame(4003, "")},
	{"c4100 app", testMax, closeFrame(4100, "app")},
	{"c4999 é", testMax, closeFrame(4999, "é")},
	{"c1000 " + reason123, testMax, closeFrame(1000, reason123)},
	{"c1000 " + reasonRunes, testMax, closeFrame(1000, reasonRunes)},
	{"c1000 a\x00b\nc", testMax, closeFrame(1000, "a\x00b\nc")},
	// The reason limit is about the reason, not the message limit.
	{"c1000 " + reason123, 0, closeFrame(1000, reason123)},
}

func TestParseFrame(t *testing.T) {
	for _, tt := range parseFrameTests {
		got, err := wire.ParseFrame([]byte(tt.in), tt.max)
		if err != nil {
			t.Errorf("ParseFrame(%q, %d) returned error %v, want %s", tt.in, tt.max, err, show(tt.want))
			continue
		}
		if !sameFrame(got, tt.want) {
			t.Errorf("ParseFrame(%q, %d) = %s, want %s", tt.in, tt.max, show(got), show(tt.want))
		}
		if got.Type == wire.FrameText || got.Type == wire.FrameTextBase64 {
			if !utf8.Valid(got.Message.Data) {
				t.Errorf("ParseFrame(%q) returned invalid UTF-8 text %q", tt.in, got.Message.Data)
			}
		}
	}
}

var parseFrameErrorTests = []struct {
	in   string
	max  int
	want error
}{
	{"", testMax, wire.ErrMalformed},

	// Unknown types, including the right letters in the wrong case.
	{"x", testMax, wire.ErrMalformed},
	{"A1", testMax, wire.ErrMalformed},
	{"H", testMax, wire.ErrMalformed},
	{"C1000", testMax, wire.ErrMalformed},
	{"\x00", testMax, wire.ErrMalformed},
	{"\xff", testMax, wire.ErrMalformed},
	{" mhello", testMax, wire.ErrMalformed},
	{"6:mhello", testMax, wire.ErrMalformed},

	// Heartbeats carry nothing.
	{"h ", testMax, wire.ErrMalformed},
	{"hx", testMax, wire.ErrMalformed},
	{"h0", testMax, wire.ErrMalformed},

	// Acknowledgement counts.
	{"a", testMax, wire.ErrMalformed},
	{"a-1", testMax, wire.ErrMalformed},
	{"a+1", testMax, wire.ErrMalformed},
	{"a 1", testMax, wire.ErrMalformed},
	{"a1 ", testMax, wire.ErrMalformed},
	{"a1.0", testMax, wire.ErrMalformed},
	{"a1e3", testMax, wire.ErrMalformed},
	{"a0x10", testMax, wire.ErrMalformed},
	{"ax", testMax, wire.ErrMalformed},
	{"a１", testMax, wire.ErrMalformed}, // fullwidth digit one
	{"a00", testMax, wire.ErrMalformed},
	{"a01", testMax, wire.ErrMalformed},
	{"a0017", testMax, wire.ErrMalformed},
	{"a18446744073709551616", testMax, wire.ErrMalformed},  // 2^64
	{"a99999999999999999999", testMax, wire.ErrMalformed},  // 20 digits, overflows
	{"a100000000000000000000", testMax, wire.ErrMalformed}, // 21 digits
	{"a" + strings.Repeat("9", 100), testMax, wire.ErrMalformed},

	// Close codes.
	{"c", testMax, wire.ErrMalformed},
	{"c ", testMax, wire.ErrMalformed},
	{"c bye", testMax, wire.ErrMalformed},
	{"c0", testMax, wire.ErrMalformed},
	{"c999", testMax, wire.ErrMalformed},
	{"c01000", testMax, wire.ErrMalformed},
	{"c0100", testMax, wire.ErrMalformed},
	{"c+100", testMax, wire.ErrMalformed},
	{"c-1000", testMax, wire.ErrMalformed},
	{"c1000x", testMax, wire.ErrMalformed},
	{"c1000\tbye", testMax, wire.ErrMalformed},
	{"c1000\nbye", testMax, wire.ErrMalformed},
	{"c10000", testMax, wire.ErrMalformed},
	{"c18446744073709551616", testMax, wire.ErrMalformed},
	{"c1004", testMax, wire.ErrMalformed},
	{"c1005", testMax, wire.ErrMalformed},
	{"c1006", testMax, wire.ErrMalformed}, // local only, never sent
	{"c1015", testMax, wire.ErrMalformed},
	{"c2999", testMax, wire.ErrMalformed},
	{"c5000", testMax, wire.ErrMalformed},
	{"c9999", testMax, wire.ErrMalformed},

	// Close reasons.
	{"c1000 " + reason124, testMax, wire.ErrMalformed},
	{"c1000 " + reasonRunes + "x", testMax, wire.ErrMalformed},
	{"c1000 \xff", testMax, wire.ErrMalformed},
	{"c1000 bad \xc3", testMax, wire.ErrMalformed},         // truncated rune
	{"c1000 \xed\xa0\x80", testMax, wire.ErrMalformed},     // surrogate
	{"c1000 \xc0\xaf", testMax, wire.ErrMalformed},         // overlong
	{"c4100 \xf4\x90\x80\x80", testMax, wire.ErrMalformed}, // above U+10FFFF

	// Text must be UTF-8, raw or in base64.
	{"m\xff", testMax, wire.ErrMalformed},
	{"mabc\xc3", testMax, wire.ErrMalformed},
	{"m\xed\xa0\x80", testMax, wire.ErrMalformed},
	{"m\xc0\xaf", testMax, wire.ErrMalformed},
	{"M" + b64("\xff"), testMax, wire.ErrMalformed},
	{"M" + b64("abc\xc3"), testMax, wire.ErrMalformed},
	{"M" + b64("\xed\xa0\x80"), testMax, wire.ErrMalformed},

	// Base64: standard alphabet, with padding, nothing else.
	{"M!!!!", testMax, wire.ErrMalformed},
	{"MaGk", testMax, wire.ErrMalformed},   // "hi" without padding
	{"MaGk==", testMax, wire.ErrMalformed}, // too much padding
	{"MaGk=x", testMax, wire.ErrMalformed}, // data after padding
	{"MaGk=aGk=", testMax, wire.ErrMalformed},
	{"Ma", testMax, wire.ErrMalformed},
	{"M=", testMax, wire.ErrMalformed},
	{"M====", testMax, wire.ErrMalformed},
	{"MaGk=\n", testMax, wire.ErrMalformed}, // line breaks are outside the alphabet
	{"MaG\nk=", testMax, wire.ErrMalformed},
	{"MaG\r\nk=", testMax, wire.ErrMalformed},
	{"MaGk=\r", testMax, wire.ErrMalformed},
	{"M aGk=", testMax, wire.ErrMalformed},
	{"MaGl=", testMax, wire.ErrMalformed}, // nonzero padding bits: not canonical
	{"BAP8", testMax, wire.ErrMalformed},
	{"BAP9=", testMax, wire.ErrMalformed},
	{"B-_8=", testMax, wire.ErrMalformed}, // URL alphabet
	{"B\xff\xff\xff\xff", testMax, wire.ErrMalformed},
	{"BAP8=\n", testMax, wire.ErrMalformed},

	// Messages over the limit.
	{"m" + overLimit, testMax, wire.ErrMessageTooBig},
	{"m" + overLimitMore, testMax, wire.ErrMessageTooBig},
	{"mx", 0, wire.ErrMessageTooBig},
	{"b" + overLimit, testMax, wire.ErrMessageTooBig},
	{"bxy", 1, wire.ErrMessageTooBig},
	{"M" + b64(overLimit), testMax, wire.ErrMessageTooBig},
	{"M" + b64(overLimitMore), testMax, wire.ErrMessageTooBig},
	{"M" + b64("xy"), 1, wire.ErrMessageTooBig},
	{"B" + b64(overLimit), testMax, wire.ErrMessageTooBig},
	{"B" + b64(overLimit+"xx"), testMax, wire.ErrMessageTooBig},
	{"B" + b64(overLimitMore), testMax, wire.ErrMessageTooBig},
	{"B" + b64("x"), 0, wire.ErrMessageTooBig},
}

func TestParseFrameErrors(t *testing.T) {
	for _, tt := range parseFrameErrorTests {
		got, err := wire.ParseFrame([]byte(tt.in), tt.max)
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseFrame(%q, %d) = %s, %v, want error %v", tt.in, tt.max, show(got), err, tt.want)
		}
	}
}

// TestParseFrameUnknownTypes checks every first byte that is not a frame type.
func TestParseFrameUnknownTypes(t *testing.T) {
	known := "mMbBahc"
	for c := range 256 {
		if strings.IndexByte(known, byte(c)) >= 0 {
			continue
		}
		for _, payload := range []string{"", "x", "1000", "aGk="} {
			p := append([]byte{byte(c)}, payload...)
			if _, err := wire.ParseFrame(p, testMax); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseFrame(%q) error = %v, want %v", p, err, wire.ErrMalformed)
			}
		}
	}
}

// TestParseFrameAliases checks the documented memory contract: raw payloads
// alias the input, base64 payloads do not.
func TestParseFrameAliases(t *testing.T) {
	raw := []byte("bxyz")
	f, err := wire.ParseFrame(raw, testMax)
	if err != nil {
		t.Fatalf("ParseFrame(%q) error: %v", raw, err)
	}
	raw[1] = 'X'
	if string(f.Message.Data) != "Xyz" {
		t.Errorf("ParseFrame(%q): raw payload %q does not alias the input", raw, f.Message.Data)
	}

	enc := []byte("B" + b64("xyz"))
	f, err = wire.ParseFrame(enc, testMax)
	if err != nil {
		t.Fatalf("ParseFrame(%q) error: %v", enc, err)
	}
	clear(enc)
	if string(f.Message.Data) != "xyz" {
		t.Errorf("ParseFrame(B...): base64 payload %q changed with the input", f.Message.Data)
	}
}

var isMessageTests = []struct {
	typ  wire.FrameType
	want bool
}{
	{wire.FrameText, true},
	{wire.FrameTextBase64, true},
	{wire.FrameBinary, true},
	{wire.FrameBinaryBase64, true},
	{wire.FrameAck, false},
	{wire.FrameHeartbeat, false},
	{wire.FrameClose, false},
	{'x', false},
	{0, false},
}

func TestIsMessage(t *testing.T) {
	for _, tt := range isMessageTests {
		f := wire.Frame{Type: tt.typ}
		if got := f.IsMessage(); got != tt.want {
			t.Errorf("Frame{Type: %q}.IsMessage() = %v, want %v", tt.typ, got, tt.want)
		}
	}
}

func textMsg(s string) wire.Message { return wire.Message{Type: wire.Text, Data: []byte(s)} }
func binaryMsg(s string) wire.Message {
	return wire.Message{Type: wire.Binary, Data: []byte(s)}
}

var appendMessageTests = []struct {
	enc  wire.Encoding
	m    wire.Message
	want string
}{
	{wire.RawEncoding, textMsg("hello"), "mhello"},
	{wire.RawEncoding, textMsg(""), "m"},
	{wire.RawEncoding, textMsg("a\nb"), "ma\nb"},
	{wire.RawEncoding, binaryMsg("\x00\xff"), "b\x00\xff"},
	{wire.RawEncoding, binaryMsg(""), "b"},
	{wire.TextOnlyEncoding, textMsg("hello"), "mhello"},
	{wire.TextOnlyEncoding, textMsg(""), "m"},
	{wire.TextOnlyEncoding, textMsg("hé 世界"), "mhé 世界"},
	{wire.TextOnlyEncoding, textMsg("a\nb"), "M" + b64("a\nb")},
	{wire.TextOnlyEncoding, textMsg("a\rb"), "M" + b64("a\rb")},
	{wire.TextOnlyEncoding, textMsg("\r\n"), "M" + b64("\r\n")},
	{wire.TextOnlyEncoding, binaryMsg("\x00\xff"), "BAP8="},
	{wire.TextOnlyEncoding, binaryMsg("hi"), "BaGk="},
	{wire.TextOnlyEncoding, binaryMsg(""), "B"},
}

func TestAppendMessage(t *testing.T) {
	for _, tt := range appendMessageTests {
		got := tt.enc.AppendMessage([]byte("prefix"), tt.m)
		if string(got) != "prefix"+tt.want {
			t.Errorf("Encoding(%d).AppendMessage(prefix, %v %q) = %q, want %q", tt.enc, tt.m.Type, tt.m.Data, got, "prefix"+tt.want)
		}
		if n := tt.enc.FrameLen(tt.m); n != len(tt.want) {
			t.Errorf("Encoding(%d).FrameLen(%v %q) = %d, want %d", tt.enc, tt.m.Type, tt.m.Data, n, len(tt.want))
		}
		if typ := tt.enc.MessageFrameType(tt.m); typ != wire.FrameType(tt.want[0]) {
			t.Errorf("Encoding(%d).MessageFrameType(%v %q) = %q, want %q", tt.enc, tt.m.Type, tt.m.Data, typ, tt.want[0])
		}
	}
}

var appendControlTests = []struct {
	name string
	got  []byte
	want string
}{
	{"AppendAck(0)", wire.AppendAck(nil, 0), "a0"},
	{"AppendAck(17)", wire.AppendAck(nil, 17), "a17"},
	{"AppendAck(max)", wire.AppendAck(nil, math.MaxUint64), "a18446744073709551615"},
	{"AppendAck(prefix, 1)", wire.AppendAck([]byte("x"), 1), "xa1"},
	{"AppendHeartbeat", wire.AppendHeartbeat(nil), "h"},
	{"AppendHeartbeat(prefix)", wire.AppendHeartbeat([]byte("x")), "xh"},
	{"AppendClose(1000)", wire.AppendClose(nil, wire.CloseError{Code: 1000}), "c1000"},
	{"AppendClose(1000 bye)", wire.AppendClose(nil, wire.CloseError{Code: 1000, Reason: "bye"}), "c1000 bye"},
	{"AppendClose(4999 é)", wire.AppendClose(nil, wire.CloseError{Code: 4999, Reason: "é"}), "c4999 é"},
	{"AppendClose(123 bytes)", wire.AppendClose(nil, wire.CloseError{Code: 1000, Reason: reason123}), "c1000 " + reason123},
	{"AppendClose(124 bytes)", wire.AppendClose(nil, wire.CloseError{Code: 1000, Reason: reason124}), "c1000 " + reason123},
	{"AppendClose(runes)", wire.AppendClose(nil, wire.CloseError{Code: 1000, Reason: "xx" + strings.Repeat("é", 61)}), "c1000 xx" + strings.Repeat("é", 60)},
}

func TestAppendControl(t *testing.T) {
	for _, tt := range appendControlTests {
		if string(tt.got) != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

var truncateReasonTests = []struct {
	in, want string
}{
	{"", ""},
	{"bye", "bye"},
	{reason123, reason123},
	{reason124, reason123},
	{reason123 + "é", reason123},
	{reasonRunes, reasonRunes},
	{"x" + reasonRunes, "x" + reasonRunes[:len(reasonRunes)-1]},
	{"xx" + strings.Repeat("é", 61), "xx" + strings.Repeat("é", 60)},    // é straddles byte 123
	{"xx" + strings.Repeat("世", 41), "xx" + strings.Repeat("世", 40)},    // 125 bytes
	{strings.Repeat("🙂", 31), strings.Repeat("🙂", 30)},                  // 124 bytes
	{strings.Repeat("🙂", 30) + "xxx", strings.Repeat("🙂", 30) + "xxx"},  // 123 bytes
	{strings.Repeat("🙂", 30) + "xxxx", strings.Repeat("🙂", 30) + "xxx"}, // 124 bytes
	// Invalid UTF-8 travels as U+FFFD (PROTOCOL.md section 4: the reason is UTF-8).
	{"a\xffb", "a\uFFFDb"},
	{"\xed\xa0\x80", "\uFFFD"}, // a surrogate
	{strings.Repeat("x", 121) + "\xff", strings.Repeat("x", 121)}, // U+FFFD is 3 bytes: 124
}

func TestTruncateReason(t *testing.T) {
	for _, tt := range truncateReasonTests {
		got := wire.TruncateReason(tt.in)
		if got != tt.want {
			t.Errorf("TruncateReason(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if len(got) > wire.MaxReasonBytes || !utf8.ValidString(got) {
			t.Errorf("TruncateReason(%q) = %q: %d bytes, valid UTF-8 %v", tt.in, got, len(got), utf8.ValidString(got))
		}
	}
}

var roundTripMessages = []wire.Message{
	textMsg(""),
	textMsg("hello"),
	textMsg("hé 世界 🙂"),
	textMsg("line\nbreak"),
	textMsg("carriage\rreturn"),
	textMsg("\r\n\r\n"),
	textMsg("\x00 nul"),
	textMsg("6:mhello3:a12"),
	textMsg(atLimit),
	binaryMsg(""),
	binaryMsg("\x00"),
	binaryMsg("\x00\xff\n\r"),
	binaryMsg(allBytes[:testMax]),
	binaryMsg(atLimit),
	binaryMsg("x"),
	binaryMsg("xy"),
	binaryMsg("xyz"),
}

var encodings = []wire.Encoding{wire.RawEncoding, wire.TextOnlyEncoding}

func TestMessageRoundTrip(t *testing.T) {
	for _, enc := range encodings {
		for _, m := range roundTripMessages {
			p := enc.AppendMessage(nil, m)
			if enc == wire.TextOnlyEncoding && bytes.ContainsAny(p, "\r\n") {
				t.Errorf("TextOnlyEncoding.AppendMessage(%v %q) = %q, holds a line break", m.Type, m.Data, p)
			}
			got, err := wire.ParseFrame(p, testMax)
			if err != nil {
				t.Errorf("ParseFrame(%q) error: %v, want %v %q", p, err, m.Type, m.Data)
				continue
			}
			want := wire.Frame{Type: enc.MessageFrameType(m), Message: m}
			if !sameFrame(got, want) {
				t.Errorf("ParseFrame(%q) = %s, want %s", p, show(got), show(want))
			}
		}
	}
}

var roundTripControls = []wire.Frame{
	ack(0), ack(1), ack(64), ack(math.MaxUint64),
	heartbeat,
	closeFrame(1000, ""), closeFrame(1000, "done"), closeFrame(1001, "going away"),
	closeFrame(1014, ""), closeFrame(3000, "x"), closeFrame(4003, "protocol error"),
	closeFrame(4999, reason123), closeFrame(4100, reasonRunes),
}

func TestControlRoundTrip(t *testing.T) {
	for _, f := range roundTripControls {
		p := appendControl(f)
		got, err := wire.ParseFrame(p, testMax)
		if err != nil {
			t.Errorf("ParseFrame(%q) error: %v, want %s", p, err, show(f))
			continue
		}
		if !sameFrame(got, f) {
			t.Errorf("ParseFrame(%q) = %s, want %s", p, show(got), show(f))
		}
	}
}
