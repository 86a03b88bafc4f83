package wire

import (
	"strconv"
)

// A batch is zero or more frames, each preceded by its length in decimal
// and a colon (PROTOCOL.md section 4.1). HTTP bodies carry batches.

// maxLengthDigits bounds the decimal length prefix of a batched frame.
const maxLengthDigits = 10

// AppendBatchFrame appends one already-encoded frame with its length prefix.
func AppendBatchFrame(dst, frame []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(frame)), 10)
	dst = append(dst, ':')
	return append(dst, frame...)
}

// AppendBatchMessage appends m to a batch, encoded with enc: its frame from
// shared when shared is not nil (SharedFrame), and otherwise encoded
// without an intermediate buffer.
func (enc Encoding) AppendBatchMessage(dst []byte, m Message, shared *Frames) []byte {
	if shared != nil {
		return AppendBatchFrame(dst, enc.SharedFrame(m, shared))
	}
	dst = strconv.AppendInt(dst, int64(enc.FrameLen(m)), 10)
	dst = append(dst, ':')
	return enc.AppendMessage(dst, m)
}

// ParseBatch decodes every frame of a batch, in order, calling fn for each.
// Raw message payloads alias p. It stops at the first error, from the
// batch or from fn; on a malformed batch fn may already have been called for
// the frames before the fault, so callers that must accept all or nothing
// collect the frames first.
func ParseBatch(p []byte, maxMessage int, fn func(Frame) error) error {
	return parseFrames(p, maxMessage, fn, decimalLength)
}

// decimalLength reads a batch frame's length prefix: decimal digits, no
// leading zero, then a colon. It returns the length and the prefix's size.
func decimalLength(p []byte) (uint64, int, error) {
	i := 0
	for i < len(p) && i <= maxLengthDigits && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	if i == 0 || i > maxLengthDigits || i == len(p) || p[i] != ':' {
		return 0, 0, malformed("invalid frame length prefix")
	}
	if p[0] == '0' {
		return 0, 0, malformed("frame length with a leading zero or zero length")
	}
	n, err := strconv.ParseUint(string(p[:i]), 10, 64)
	if err != nil {
		return 0, 0, malformed("invalid frame length: %v", err)
	}
	return n, i + 1, nil
}

// parseFrames is the loop of both batch formats: a length, read by
// length, then that many bytes of frame, until p ends.
func parseFrames(p []byte, maxMessage int, fn func(Frame) error, length func([]byte) (n uint64, size int, err error)) error {
	for len(p) > 0 {
		n, size, err := length(p)
		if err != nil {
			return err
		}
		p = p[size:]
		if n > uint64(len(p)) {
			return malformed("frame length %d exceeds the %d bytes left", n, len(p))
		}
		f, err := ParseFrame(p[:n], maxMessage)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}
