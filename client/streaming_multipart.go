package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Bounds on what a multipart stream may hold outside part bodies.
const (
	maxPreambleBytes = 64 << 10 // the padding before the first part
	maxHeaderLine    = 1 << 10
	maxPartHeaders   = 32
)

// errMultipart is wrapped by every error for a stream that breaks the
// multipart rules of PROTOCOL.md section 4.4.
var errMultipart = errors.New("streaming: malformed multipart stream")

func multipartError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMultipart, fmt.Sprintf(format, args...))
}

// validBoundary reports whether b is a multipart boundary as RFC 2046
// allows: 1 to 70 characters from its set, not ending in a space.
func validBoundary(b string) bool {
	if len(b) == 0 || len(b) > 70 || b[len(b)-1] == ' ' {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte("'()+_,-./:=? "), c) >= 0:
		default:
			return false
		}
	}
	return true
}

// multipartParser reads the parts of a multipart/x-mixed-replace body as
// they arrive, by each part's Content-Length: a part is returned as soon as
// its last byte (and the CRLF after it) is read, without waiting for the
// delimiter that follows, which the server sends only with the next part.
// The preamble is skipped; lines may end in CRLF or a bare LF; transport
// padding (spaces and tabs) after a delimiter is allowed.
type multipartParser struct {
	r       *bufio.Reader
	delim   []byte // "--" and the boundary
	limit   int    // the largest part body
	started bool   // the first delimiter has been read
	done    bool   // the closing delimiter has been read
	line    []byte
}

func newMultipartParser(r io.Reader, boundary string, limit int) *multipartParser {
	return &multipartParser{r: bufio.NewReaderSize(r, 16<<10), delim: []byte("--" + boundary), limit: limit}
}

// readLine reads one line, without its ending, keeping at most keep bytes
// of it; long reports that it held more. budget, when not nil, is charged
// for every byte read and the read fails when it runs out. The slice is
// valid until the next call. At the end of the stream it returns the
// partial line and io.ErrUnexpectedEOF.
func (p *multipartParser) readLine(keep int, budget *int) (line []byte, long bool, err error) {
	p.line = p.line[:0]
	for {
		c, err := p.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				// The partial line goes with the error: a closing
				// delimiter may end the stream without a line ending.
				return p.line, long, io.ErrUnexpectedEOF
			}
			return nil, false, err
		}
		if budget != nil {
			if *budget--; *budget < 0 {
				return nil, false, multipartError("preamble longer than %d bytes", maxPreambleBytes)
			}
		}
		if c == '\n' {
			return bytes.TrimSuffix(p.line, []byte{'\r'}), long, nil
		}
		if len(p.line) < keep {
			p.line = append(p.line, c)
		} else {
			long = true
		}
	}
}

// delimiter reports whether line is the delimiter (closing is false) or
// the closing delimiter, allowing transport padding after either.
func (p *multipartParser) delimiter(line []byte) (ok, closing bool) {
	rest, found := bytes.CutPrefix(line, p.delim)
	if !found {
		return false, false
	}
	rest, closing = bytes.CutPrefix(rest, []byte("--"))
	if len(bytes.Trim(rest, " \t")) != 0 {
		return false, false
	}
	return true, closing
}

// next returns the body of the next part, in new memory. It returns io.EOF
// after the closing delimiter, and io.ErrUnexpectedEOF when the stream ends
// anywhere else.
func (p *multipartParser) next() ([]byte, error) {
	if p.done {
		return nil, io.EOF
	}
	keep := len(p.delim) + 80
	budget := maxPreambleBytes
	for {
		var b *int
		if !p.started {
			b = &budget
		}
		line, long, err := p.readLine(keep, b)
		ok, closing := p.delimiter(line)
		if err != nil {
			if ok && closing && !long && err == io.ErrUnexpectedEOF {
				p.done = true
				return nil, io.EOF
			}
			return nil, err
		}
		if ok && !long {
			p.started = true
			if closing {
				p.done = true
				return nil, io.EOF
			}
			break
		}
		if p.started {
			return nil, multipartError("expected a delimiter")
		}
	}
	length := -1
	for n := 0; ; n++ {
		if n > maxPartHeaders {
			return nil, multipartError("more than %d part headers", maxPartHeaders)
		}
		line, long, err := p.readLine(maxHeaderLine, nil)
		if err != nil {
			return nil, err
		}
		if long {
			return nil, multipartError("part header longer than %d bytes", maxHeaderLine)
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return nil, multipartError("part header without a colon")
		}
		if !bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			continue
		}
		v := bytes.TrimSpace(value)
		n, err := strconv.ParseUint(string(v), 10, 63)
		if err != nil || length >= 0 {
			return nil, multipartError("invalid or repeated Content-Length")
		}
		if n > uint64(p.limit) {
			return nil, multipartError("part of %d bytes, limit %d", n, p.limit)
		}
		length = int(n)
	}
	if length < 0 {
		return nil, multipartError("part without Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(p.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line, long, err := p.readLine(1, nil)
	if err != nil {
		return nil, err
	}
	if len(line) != 0 || long {
		return nil, multipartError("part body longer than its Content-Length")
	}
	return body, nil
}
