package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tetherkit/tether/wire"
)

// part writes one part as the server does, ending with the CRLF that
// starts the next delimiter.
func part(boundary, body string) string {
	return fmt.Sprintf("--%s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n%s\r\n", boundary, len(body), body)
}

// compactPart writes one part as the server does with compact framing:
// without a Content-Type.
func compactPart(boundary, body string) string {
	return fmt.Sprintf("--%s\r\nContent-Length: %d\r\n\r\n%s\r\n", boundary, len(body), body)
}

// multipartParseTests are streams with boundary "B" and the part bodies
// they hold, then the error that ends them.
var multipartParseTests = []struct {
	name  string
	in    string
	parts []string
	err   error
}{
	{"closing only", "--B--\r\n", nil, io.EOF},
	{"preamble and parts", "    \r\n" + part("B", "1:h") + part("B", "6:mhello") + "--B--\r\n", []string{"1:h", "6:mhello"}, io.EOF},
	{"no preamble", part("B", "1:h") + "--B--", []string{"1:h"}, io.EOF},
	{"bare LF and padding", "--B \t\nContent-Length: 3\n\n1:h\n--B-- \n", []string{"1:h"}, io.EOF},
	{"body holding the delimiter", part("B", "\r\n--B\r\n") + "--B--\r\n", []string{"\r\n--B\r\n"}, io.EOF},
	{"empty part", part("B", "") + "--B--\r\n", []string{""}, io.EOF},
	{"part available before the next delimiter", part("B", "1:h"), []string{"1:h"}, io.ErrUnexpectedEOF},
	{"cut inside a body", "--B\r\nContent-Length: 9\r\n\r\n1:h", nil, io.ErrUnexpectedEOF},
	{"cut in the preamble", "padding", nil, io.ErrUnexpectedEOF},
	{"other boundary is preamble", part("C", "1:h") + part("B", "1:h") + "--B--\r\n", []string{"1:h"}, io.EOF},
	{"no Content-Length", "--B\r\nContent-Type: x\r\n\r\n1:h\r\n--B--\r\n", nil, errMultipart},
	{"two Content-Lengths", "--B\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n1:h\r\n", nil, errMultipart},
	{"negative Content-Length", "--B\r\nContent-Length: -1\r\n\r\n", nil, errMultipart},
	{"part over the limit", "--B\r\nContent-Length: 65\r\n\r\n", nil, errMultipart},
	{"body longer than said", "--B\r\nContent-Length: 1\r\n\r\n1:h\r\n", nil, errMultipart},
	{"garbage between parts", part("B", "1:h") + "junk\r\n", []string{"1:h"}, errMultipart},
	{"header without colon", "--B\r\nContent-Length 3\r\n\r\n", nil, errMultipart},
	{"preamble too long", strings.Repeat("x", maxPreambleBytes+1), nil, errMultipart},
}

func TestMultipartParser(t *testing.T) {
	for _, tt := range multipartParseTests {
		t.Run(tt.name, func(t *testing.T) {
			p := newMultipartParser(strings.NewReader(tt.in), "B", 64)
			var got []string
			var err error
			for {
				var body []byte
				if body, err = p.next(); err != nil {
					break
				}
				got = append(got, string(body))
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("parse(%q) ended with %v, want %v", tt.in, err, tt.err)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.parts) {
				t.Errorf("parse(%q) = %q, want %q", tt.in, got, tt.parts)
			}
		})
	}
}

func TestValidBoundary(t *testing.T) {
	for b, want := range map[string]bool{
		"tether-0123abcdef": true, "a": true, "a b": true, strings.Repeat("x", 70): true,
		"": false, "a ": false, "a\r\nb": false, "a\"b": false, strings.Repeat("x", 71): false,
	} {
		if got := validBoundary(b); got != want {
			t.Errorf("validBoundary(%q) = %v, want %v", b, got, want)
		}
	}
}

// FuzzMultipartParser feeds arbitrary streams to the multipart parser,
// which must neither panic nor return a part over its limit, and
// round-trips the input as the payload of a binary message in a part.
func FuzzMultipartParser(f *testing.F) {
	for _, tt := range multipartParseTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 256
		p := newMultipartParser(bytes.NewReader(in), "B", limit)
		for {
			body, err := p.next()
			if err != nil {
				break
			}
			if len(body) > limit {
				t.Fatalf("part of %d bytes, limit %d", len(body), limit)
			}
		}

		m := wire.Message{Type: wire.Binary, Data: in}
		for _, compact := range []bool{false, true} {
			batch := wire.RawEncoding.AppendBatchMessage(nil, m, nil)
			stream := "  \r\n" + part("B", "1:h") + part("B", string(batch)) + "--B--\r\n"
			parse := wire.ParseBatch
			if compact {
				batch = wire.RawEncoding.AppendCompactMessage(nil, m, nil)
				stream = "  \r\n" + compactPart("B", "\x01h") + compactPart("B", string(batch)) + "--B--\r\n"
				parse = wire.ParseCompactBatch
			}
			d := &multipartDecoder{p: newMultipartParser(strings.NewReader(stream), "B", len(batch)), maxMessage: len(in), parse: parse}
			var frames []wire.Frame
			collect := func(f wire.Frame) error { frames = append(frames, f); return nil }
			for {
				err := d.next(collect)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("stream for %q (compact %v): %v", in, compact, err)
				}
			}
			if len(frames) != 2 || frames[0].Type != wire.FrameHeartbeat || frames[1].Type != wire.FrameBinary || !bytes.Equal(frames[1].Message.Data, in) {
				t.Fatalf("stream for %q (compact %v) gave %+v", in, compact, frames)
			}
		}
	})
}
