package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	wire "github.com/tetherkit/tether/transport"
)

// sseTransport attaches server-sent events streams: GET {prefix}sse, one
// frame per event (PROTOCOL.md section 4.3), for the server-to-client
// direction, and the shared send loop for the other.
var sseTransport = &streamTransport{kind: "sse", open: openSSE}

// openSSE checks that resp is an event stream and returns its decoder.
func openSSE(resp *http.Response, maxMessage int) (frameDecoder, error) {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "text/event-stream" {
		return nil, fmt.Errorf("sse: Content-Type %q is not text/event-stream", resp.Header.Get("Content-Type"))
	}
	return &sseDecoder{p: newSSEParser(resp.Body, sseLineLimit(maxMessage)), maxMessage: maxMessage}, nil
}

// sseLineLimit is the longest line an event stream may hold for messages
// of up to maxMessage bytes: "data:", the type byte and the base64 payload,
// with room to spare.
func sseLineLimit(maxMessage int) int {
	return 64 + (maxMessage+2)/3*4
}

// sseDecoder decodes the frame of each event.
type sseDecoder struct {
	p          *sseParser
	maxMessage int
}

// next implements frameDecoder: one event, one frame.
func (d *sseDecoder) next(fn func(wire.Frame) error) error {
	ev, err := d.p.next()
	if err != nil {
		return err
	}
	f, err := wire.ParseFrame(ev.data, d.maxMessage)
	if err != nil {
		return err
	}
	return fn(f)
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
// a comment line; the slice is valid until the next call. At the end of the stream it returns io.EOF, or
// io.ErrUnexpectedEOF when a line was cut.
func (p *sseParser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		c, err := p.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(p.line) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if p.pendingCR {
			p.pendingCR = false
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\n':
			return p.line, nil
		case '\r':
			p.pendingCR = true
			return p.line, nil
		}
		switch {
		case len(p.line) == 1 && p.line[0] == ':':
			// A comment (the prelude's padding): of any length, and
			// not kept.
		case len(p.line) >= p.limit:
			return nil, errSSELineTooLong
		default:
			p.line = append(p.line, c)
		}
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
