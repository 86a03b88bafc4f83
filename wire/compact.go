package wire

// Compact framing (PROTOCOL.md section 4.6) is what a client asks for with
// compact=1 on an sse, streaming or longpoll attach: the same frames,
// delimited with fewer bytes. A compact batch prefixes each frame with its
// length in unsigned LEB128 instead of decimal digits and a colon (2 bytes
// instead of 4 for a 64-byte message); a compact event stream carries a
// whole batch in one event. A server marks a compact response with the
// media type parameter compact=1, so that a client can tell it from the
// answer of a server that ignored the request.

// CompactParam is the query parameter, with the value "1", by which an
// attach request asks for compact framing.
const CompactParam = "compact"

// CompactMediaParam is appended to the Content-Type of a compact response.
const CompactMediaParam = "; compact=1"

// maxCompactLengthBytes bounds the LEB128 length of a compact frame: 35 bits
// cover the 10 decimal digits a batch allows.
const maxCompactLengthBytes = 5

// AppendCompactFrame appends one encoded frame with its LEB128 length.
func AppendCompactFrame(dst, frame []byte) []byte {
	dst = appendLEB128(dst, uint64(len(frame)))
	return append(dst, frame...)
}

// AppendCompactMessage appends m to a compact batch, encoded with enc: its
// frame from shared when shared is not nil (SharedFrame), and otherwise
// encoded without an intermediate buffer.
func (enc Encoding) AppendCompactMessage(dst []byte, m Message, shared *Frames) []byte {
	if shared != nil {
		return AppendCompactFrame(dst, enc.SharedFrame(m, shared))
	}
	dst = appendLEB128(dst, uint64(enc.FrameLen(m)))
	return enc.AppendMessage(dst, m)
}

func appendLEB128(dst []byte, n uint64) []byte {
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// ParseCompactBatch decodes every frame of a compact batch, in order,
// calling fn for each, as ParseBatch does for a batch. A length must use as
// few bytes as it can (no trailing zero byte) and may not be zero.
func ParseCompactBatch(p []byte, maxMessage int, fn func(Frame) error) error {
	return parseFrames(p, maxMessage, fn, compactLength)
}

// compactLength reads a compact frame length: LEB128, in its shortest
// form, not zero. It returns the length and its size in bytes.
func compactLength(p []byte) (uint64, int, error) {
	var n uint64
	for i := 0; ; {
		if i == len(p) {
			return 0, 0, malformed("frame length cut short")
		}
		if i == maxCompactLengthBytes {
			return 0, 0, malformed("frame length longer than %d bytes", maxCompactLengthBytes)
		}
		c := p[i]
		n |= uint64(c&0x7f) << (7 * i)
		i++
		if c < 0x80 {
			if c == 0 && i > 1 {
				return 0, 0, malformed("frame length not in its shortest form")
			}
			if n == 0 {
				return 0, 0, malformed("zero frame length")
			}
			return n, i, nil
		}
	}
}
