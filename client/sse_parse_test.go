package client

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tetherkit/tether/wire"
)

// sseParseTests are event streams and the events an EventSource would
// dispatch from them, then the error that ends the stream.
var sseParseTests = []struct {
	name   string
	in     string
	events []sseEvent
	err    error
}{
	{"empty", "", nil, io.EOF},
	{"tether prelude", ":    \nretry:500\n\ndata:h\n\n", []sseEvent{{data: []byte("h")}}, io.EOF},
	{"ids", "id:1\ndata:ma\n\nid:2\ndata:mb\n\ndata:h\n\n",
		[]sseEvent{{[]byte("ma"), "1"}, {[]byte("mb"), "2"}, {[]byte("h"), "2"}}, io.EOF},
	{"space after colon dropped once", "data:  x\n\n", []sseEvent{{data: []byte(" x")}}, io.EOF},
	{"CRLF and CR endings", "data:a\r\n\r\ndata:b\r\rdata:c\r\n\n", []sseEvent{{data: []byte("a")}, {data: []byte("b")}, {data: []byte("c")}}, io.EOF},
	{"data lines join", "data:a\ndata:b\n\n", []sseEvent{{data: []byte("a\nb")}}, io.EOF},
	{"no data, no event", "id:7\n\nevent:x\n\n: c\n\ndata:z\n\n", []sseEvent{{[]byte("z"), "7"}}, io.EOF},
	{"id with NUL ignored", "id:3\n\nid:4\x00\ndata:q\n\n", []sseEvent{{[]byte("q"), "3"}}, io.EOF},
	{"field without colon", "data\n\n", []sseEvent{{data: nil}}, io.EOF},
	{"unknown fields skipped", "foo:bar\nretry:x\ndata:d\n\n", []sseEvent{{data: []byte("d")}}, io.EOF},
	{"cut inside an event", "data:a\n\ndata:b\n", []sseEvent{{data: []byte("a")}}, io.ErrUnexpectedEOF},
	{"cut inside a line", "data:a\n\ndata:b", []sseEvent{{data: []byte("a")}}, io.ErrUnexpectedEOF},
	{"long comment", ":" + strings.Repeat(" ", 100) + "\ndata:h\n\n", []sseEvent{{data: []byte("h")}}, io.EOF},
	{"line too long", "data:" + strings.Repeat("x", 100) + "\n\n", nil, errSSELineTooLong},
	{"data too long", strings.Repeat("data:"+strings.Repeat("x", 40)+"\n", 3) + "\n", nil, errSSELineTooLong},
}

func TestSSEParser(t *testing.T) {
	for _, tt := range sseParseTests {
		t.Run(tt.name, func(t *testing.T) {
			p := newSSEParser(strings.NewReader(tt.in), 64)
			var got []sseEvent
			var err error
			for {
				var ev sseEvent
				if ev, err = p.next(); err != nil {
					break
				}
				got = append(got, ev)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("parse(%q) ended with %v, want %v", tt.in, err, tt.err)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.events) {
				t.Errorf("parse(%q) = %q, want %q", tt.in, got, tt.events)
			}
		})
	}
}

// sseEncode writes messages as the server does: one event per message,
// numbered from 1, in the text-only encoding.
func sseEncode(msgs ...wire.Message) []byte {
	var b []byte
	for i, m := range msgs {
		b = fmt.Appendf(b, "id:%d\ndata:", i+1)
		b = wire.TextOnlyEncoding.AppendMessage(b, m)
		b = append(b, "\n\n"...)
	}
	return b
}

// sseCompactEncode writes messages as the server does with compact framing:
// one event holding them all, separated by U+001E, with the number of the
// last as id; text holding a line break or U+001E in base64.
func sseCompactEncode(msgs ...wire.Message) []byte {
	b := fmt.Appendf(nil, "id:%d\ndata:", len(msgs))
	for i, m := range msgs {
		if i > 0 {
			b = append(b, recordSeparator)
		}
		if m.Type == wire.Text && bytes.IndexByte(m.Data, recordSeparator) >= 0 {
			b = append(b, 'M')
			b = base64.StdEncoding.AppendEncode(b, m.Data)
			continue
		}
		b = wire.TextOnlyEncoding.AppendMessage(b, m)
	}
	return append(b, "\n\n"...)
}

func TestSSECompactDecoder(t *testing.T) {
	msgs := []wire.Message{
		{Type: wire.Text, Data: []byte("hello")},
		{Type: wire.Text, Data: []byte("a\x1eb")},
		{Type: wire.Binary, Data: []byte{0, 1, 0x1e, 0xff}},
		{Type: wire.Text, Data: []byte("line\nbreak")},
		{Type: wire.Text, Data: []byte("")},
	}
	in := append(sseCompactEncode(msgs...), "data:h\n\ndata:mx\x1ec1000 bye\n\n"...)
	d := &sseDecoder{p: newSSEParser(bytes.NewReader(in), sseCompactLineLimit(64)), maxMessage: 64, compact: true}
	var got []string
	for {
		err := d.next(func(f wire.Frame) error {
			switch {
			case f.IsMessage():
				got = append(got, fmt.Sprintf("%v %q", f.Message.Type, f.Message.Data))
			case f.Type == wire.FrameClose:
				got = append(got, fmt.Sprintf("close %d %q", f.Close.Code, f.Close.Reason))
			default:
				got = append(got, string(f.Type))
			}
			return nil
		})
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{`text "hello"`, `text "a\x1eb"`, `binary "\x00\x01\x1e\xff"`, `text "line\nbreak"`, `text ""`,
		"h", `text "x"`, `close 1000 "bye"`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("frames = %q, want %q", got, want)
	}
	if d.p.lastID != "5" {
		t.Errorf("last id %q, want 5", d.p.lastID)
	}
}

// FuzzSSEParser feeds arbitrary streams to the SSE parser, which must
// neither panic nor exceed its line limit, and round-trips the input as a
// text and a binary message through the server's encoding.
func FuzzSSEParser(f *testing.F) {
	for _, tt := range sseParseTests {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte("id:1\ndata:BAAEC/w==\n\n"))
	f.Add([]byte("data:c1000 bye\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 256
		p := newSSEParser(bytes.NewReader(in), limit)
		for {
			ev, err := p.next()
			if err != nil {
				break
			}
			if len(ev.data) > limit || bytes.ContainsAny(ev.data, "\r") {
				t.Fatalf("event data %q: over the limit or holding CR", ev.data)
			}
			if strings.ContainsRune(ev.lastID, 0) {
				t.Fatalf("last id %q holds NUL", ev.lastID)
			}
		}

		msgs := []wire.Message{{Type: wire.Binary, Data: in}}
		if utf8.Valid(in) {
			msgs = append(msgs, wire.Message{Type: wire.Text, Data: in})
		}
		d := &sseDecoder{p: newSSEParser(bytes.NewReader(sseEncode(msgs...)), sseLineLimit(len(in))), maxMessage: len(in)}
		checkCompactRoundTrip(t, msgs, len(in))
		for i, want := range msgs {
			err := d.next(func(f wire.Frame) error {
				if !f.IsMessage() || f.Message.Type != want.Type || !bytes.Equal(f.Message.Data, want.Data) {
					return fmt.Errorf("got %v %q", f.Message.Type, f.Message.Data)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("message %d (%v %q): %v", i+1, want.Type, want.Data, err)
			}
			if got := d.p.lastID; got != fmt.Sprint(i+1) {
				t.Fatalf("last id %q after message %d", got, i+1)
			}
		}
		if err := d.next(func(wire.Frame) error { return nil }); err != io.EOF {
			t.Fatalf("after the messages: %v, want io.EOF", err)
		}
	})
}

// checkCompactRoundTrip decodes msgs from one compact event and checks that
// they come out whole, in order, and that the last id counts them.
func checkCompactRoundTrip(t *testing.T, msgs []wire.Message, maxMessage int) {
	t.Helper()
	d := &sseDecoder{p: newSSEParser(bytes.NewReader(sseCompactEncode(msgs...)), sseCompactLineLimit(maxMessage)), maxMessage: maxMessage, compact: true}
	i := 0
	err := d.next(func(f wire.Frame) error {
		if i >= len(msgs) {
			return fmt.Errorf("frame %d of %d", i+1, len(msgs))
		}
		want := msgs[i]
		i++
		if !f.IsMessage() || f.Message.Type != want.Type || !bytes.Equal(f.Message.Data, want.Data) {
			return fmt.Errorf("got %v %q, want %v %q", f.Message.Type, f.Message.Data, want.Type, want.Data)
		}
		return nil
	})
	if err != nil || i != len(msgs) {
		t.Fatalf("compact event: %d of %d messages: %v", i, len(msgs), err)
	}
	if got := d.p.lastID; got != fmt.Sprint(len(msgs)) {
		t.Fatalf("compact event: last id %q, want %d", got, len(msgs))
	}
}
