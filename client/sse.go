package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// sseTransport attaches server-sent events streams: GET {prefix}sse, one
// frame per event (PROTOCOL.md section 4.3), for the server-to-client
// direction, and the shared send loop for the other.
var sseTransport = &streamTransport{kind: transport.SSE, open: openSSE}

// openSSE checks that resp is an event stream and returns its decoder: for
// a response marked compact=1, one batch per event (PROTOCOL.md section
// 4.6); otherwise one frame per event.
func openSSE(resp *http.Response, maxMessage int) (frameDecoder, error) {
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "text/event-stream" {
		return nil, fmt.Errorf("sse: Content-Type %q is not text/event-stream", resp.Header.Get("Content-Type"))
	}
	if params[wire.CompactParam] == "1" {
		return &sseDecoder{p: newSSEParser(resp.Body, sseCompactLineLimit(maxMessage)), maxMessage: maxMessage, compact: true}, nil
	}
	return &sseDecoder{p: newSSEParser(resp.Body, sseLineLimit(maxMessage)), maxMessage: maxMessage}, nil
}

// sseLineLimit is the longest line an event stream may hold for messages
// of up to maxMessage bytes: "data:", the type byte and the base64 payload,
// with room to spare.
func sseLineLimit(maxMessage int) int {
	return 64 + (maxMessage+2)/3*4
}

// sseCompactLineLimit is the longest line a compact event stream may hold:
// a batch (at most 64 KiB of messages, or one message of any allowed size)
// in base64, with a type byte and a separator per frame.
func sseCompactLineLimit(maxMessage int) int {
	n := max(64<<10, maxMessage) + maxMessage
	return 1024 + (n+2)/3*4*2
}

// recordSeparator (U+001E) separates the frames of a compact event.
const recordSeparator = 0x1e

// sseDecoder decodes the frames of each event.
type sseDecoder struct {
	p          *sseParser
	maxMessage int
	compact    bool // an event holds frames separated by recordSeparator
}

// next implements frameDecoder: one event, one frame, or with compact
// framing one event, one batch.
func (d *sseDecoder) next(fn func(wire.Frame) error) error {
	ev, err := d.p.next()
	if err != nil {
		return err
	}
	data := ev.data
	for {
		frame, rest, more := data, []byte(nil), false
		if d.compact {
			frame, rest, more = bytes.Cut(data, []byte{recordSeparator})
		}
		f, err := wire.ParseFrame(frame, d.maxMessage)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
		if !more {
			return nil
		}
		data = rest
	}
}

// errSSELineTooLong is returned by sseParser.next for a line over its limit.
var errSSELineTooLong = errors.New("sse: line too long")

// sseEvent is one dispatched event: its data, and the stream's last event
// id when it was dispatched.
type sseEvent struct {
	data   []byte
	lastID string
}

// sseParser reads events from a text/event-stream body the way a browser
// EventSource interprets it: lines end in CRLF, LF or CR; comment lines
// start with a colon; one space after a field's colon is dropped; the data
// lines of an event join with LF; a blank line dispatches the event unless
// it has no data line; an id field holding NUL is ignored. Only data and id
// matter to Tether; other fields are skipped. Lines other than comments are
// bounded, so a hostile stream cannot make it hold more than its limit.
type sseParser struct {
	r         *bufio.Reader
	limit     int
	lastID    string
	line      []byte // the line being read, reused
	pendingCR bool   // the last line ended in CR: an LF right after it is part of that ending
}

func newSSEParser(r io.Reader, limit int) *sseParser {
	return &sseParser{r: bufio.NewReaderSize(r, 16<<10), limit: limit}
}

// readLine returns the next line without its ending, or only the colon of
// a comment line; the slice is valid until the next call. At the end of the
// stream it returns io.EOF, or io.ErrUnexpectedEOF when a line was cut. It
// scans what the reader holds for the line's end instead of reading a byte
// at a time: a compact event's line holds a whole batch.
func (p *sseParser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		buf, err := p.r.Peek(1)
		if err != nil {
			if err == io.EOF && len(p.line) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if p.pendingCR {
			p.pendingCR = false
			if buf[0] == '\n' {
				p.r.Discard(1)
				continue
			}
		}
		buf, _ = p.r.Peek(p.r.Buffered())
		end := bytes.IndexAny(buf, "\r\n")
		chunk := buf
		if end >= 0 {
			chunk = buf[:end]
		}
		switch {
		case len(p.line) == 1 && p.line[0] == ':':
			// A comment (the prelude's padding): of any length, and
			// not kept.
		case len(p.line) == 0 && len(chunk) > 0 && chunk[0] == ':':
			p.line = append(p.line, ':')
		case len(p.line)+len(chunk) > p.limit:
			return nil, errSSELineTooLong
		default:
			p.line = append(p.line, chunk...)
		}
		if end < 0 {
			p.r.Discard(len(buf))
			continue
		}
		p.pendingCR = buf[end] == '\r'
		p.r.Discard(end + 1)
		return p.line, nil
	}
}

// next returns the next event. It returns io.EOF when the stream ends
// between events, and io.ErrUnexpectedEOF when it ends inside one (which an
// EventSource discards).
func (p *sseParser) next() (sseEvent, error) {
	var data []byte
	hasData, inEvent := false, false
	for {
		line, err := p.readLine()
		if err != nil {
			if err == io.EOF && inEvent {
				err = io.ErrUnexpectedEOF
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				return sseEvent{data: data, lastID: p.lastID}, nil
			}
			inEvent = false
			continue
		}
		inEvent = true
		if line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			if len(data)+len(value) > p.limit {
				return sseEvent{}, errSSELineTooLong
			}
			data = append(data, value...)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				p.lastID = string(value)
			}
		}
	}
}
