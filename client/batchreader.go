package client

import (
	"context"
	"fmt"
	"io"

	"github.com/tetherkit/tether/wire"
)

// batchChunkBytes is the size of the buffers a poll's body is read into.
const batchChunkBytes = 32 << 10

// readBatchBody reads a batch body (PROTOCOL.md sections 4.1 and 4.6) as it
// arrives and hands each complete frame to fn at once, so that a body cut
// short keeps the frames before the cut (the caller has counted them). It
// stops at fn's first error. Each read of body is bounded by d (see
// requestDeadline), fn's time is not: fn may wait for the application. A
// frame is never copied: the buffers are not reused, so a message's Data
// stays valid. It returns nil when the body ended after a whole frame, an
// error wrapping wire.ErrMessageTooBig as soon as a frame's length prefix
// announces a message over maxMessage, and the parser's error for a
// malformed or truncated body.
func readBatchBody(d *requestDeadline, body io.Reader, compact bool, maxMessage int, fn func(wire.Frame) error) error {
	parse := wire.ParseBatch
	if compact {
		parse = wire.ParseCompactBatch
	}
	buf := make([]byte, 0, batchChunkBytes)
	start := 0 // the first byte not yet handed to parse
	for {
		if len(buf) == cap(buf) {
			// Full: what is left moves to a new buffer; the old one
			// stays with the messages that point into it.
			pending := buf[start:]
			_, need := completeFrames(pending, compact)
			nb := make([]byte, len(pending), max(batchChunkBytes, 2*len(pending), need))
			copy(nb, pending)
			buf, start = nb, 0
		}
		d.start()
		n, err := body.Read(buf[len(buf):cap(buf)])
		if !d.stop() {
			return fmt.Errorf("no data within %v: %w", d.timeout, context.DeadlineExceeded)
		}
		buf = buf[:len(buf)+n]
		end, need := completeFrames(buf[start:], compact)
		if end > 0 {
			if err := parse(buf[start:start+end], maxMessage, fn); err != nil {
				return err
			}
			start += end
		}
		if need > 0 && tooBig(need, maxMessage) {
			return fmt.Errorf("%w: a frame of %d bytes, limit %d", wire.ErrMessageTooBig, need, maxMessage)
		}
		switch {
		case err == io.EOF && start < len(buf):
			// Cut inside a frame: the parser names the fault.
			return parse(buf[start:], maxMessage, fn)
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("reading response: %w", redact(err))
		}
	}
}

// tooBig reports whether a frame of n bytes (its length prefix included)
// holds more than maxMessage bytes of message in every encoding: base64
// carries 3 bytes in 4.
func tooBig(n, maxMessage int) bool {
	return (n-1)/4*3 > maxMessage+2
}

// completeFrames returns the size of the complete frames at the start of
// p and, when the frame after them is not complete, the size it announces
// (its length prefix included), or 0 while its prefix is not complete
// either. It checks nothing the parser checks: at a byte that cannot be
// part of a length prefix it returns len(p), so that the parser reports
// the fault at once.
func completeFrames(p []byte, compact bool) (end, need int) {
	for end < len(p) {
		n, size, ok := lengthPrefix(p[end:], compact)
		if !ok {
			return len(p), 0
		}
		if size == 0 {
			return end, 0
		}
		if n > len(p)-end-size {
			return end, size + n
		}
		end += size + n
	}
	return end, 0
}

// lengthPrefix reads the length prefix at the start of p: decimal digits
// and a colon, or LEB128 when compact. size is 0 when p ends inside the
// prefix; ok is false when p cannot start with a length prefix.
func lengthPrefix(p []byte, compact bool) (n, size int, ok bool) {
	for i, c := range p {
		switch {
		case compact && i < 5:
			n |= int(c&0x7f) << (7 * i)
			if c < 0x80 {
				return n, i + 1, true
			}
		case compact:
			return 0, 0, false
		case c >= '0' && c <= '9' && i < 10:
			n = n*10 + int(c-'0')
		case c == ':' && i > 0:
			return n, i + 1, true
		default:
			return 0, 0, false
		}
	}
	return 0, 0, true
}
