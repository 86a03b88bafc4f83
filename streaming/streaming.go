package streaming

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// Name is the transport's name in negotiate responses and URLs.
const Name = transport.Streaming

// PartContentType is the Content-Type of every part.
const PartContentType = "application/octet-stream"

// Options configure the streaming transport. A nil *Options means defaults.
type Options struct {
	// MaxStreamBytes is how many bytes a response carries before it ends and
	// the client opens the next one. Default 1 MiB
	// (transport.DefaultMaxStreamBytes).
	MaxStreamBytes int
}

// Transport is the multipart streaming transport. It is safe for
// concurrent use.
type Transport struct {
	maxStreamBytes int
	preamble       []byte
}

// New returns a streaming transport. opts is not retained.
func New(opts *Options) *Transport {
	t := &Transport{maxStreamBytes: transport.DefaultMaxStreamBytes}
	if opts != nil && opts.MaxStreamBytes > 0 {
		t.maxStreamBytes = opts.MaxStreamBytes
	}
	// Each response starts with a multipart preamble of
	// transport.DefaultPreludeBytes, padding that multipart readers skip,
	// then CRLF: the CRLF belongs to the first delimiter.
	t.preamble = append(bytes.Repeat([]byte{' '}, transport.DefaultPreludeBytes-2), "\r\n"...)
	return t
}

// Name implements transport.Transport.
func (*Transport) Name() string { return Name }

// Bidirectional implements transport.Transport: the stream carries only
// server messages.
func (*Transport) Bidirectional() bool { return false }

// ServeAttach implements transport.Transport.
func (t *Transport) ServeAttach(w http.ResponseWriter, r *http.Request, a *transport.Attach) {
	enc := newEncoder(httpx.WantsCompact(r))
	ct := "multipart/x-mixed-replace; boundary=" + enc.boundary
	if enc.compact {
		ct += wire.CompactMediaParam
	}
	transport.ServeStream(w, r, a, &transport.Stream{
		Name:           Name,
		ContentType:    ct,
		Prelude:        t.preamble,
		Encoder:        enc,
		Epilogue:       []byte("--" + enc.boundary + "--\r\n"),
		MaxStreamBytes: t.maxStreamBytes,
	})
}

// encoder writes one part per batch. A part ends with the CRLF that starts
// the next delimiter, so every part is complete once flushed.
type encoder struct {
	boundary string
	// compact: parts hold compact batches (PROTOCOL.md section 4.6).
	compact bool
	body    []byte // the batch being framed, reused
}

// newEncoder draws a boundary of 96 random bits in hex: the delimiter
// starts every part, so each byte of it is paid once per batch.
func newEncoder(compact bool) *encoder {
	var b [12]byte
	rand.Read(b[:])
	return &encoder{boundary: hex.EncodeToString(b[:]), compact: compact}
}

// AppendBatch implements transport.StreamEncoder.
func (e *encoder) AppendBatch(dst []byte, b *session.Batch, ctrl []byte) []byte {
	e.body = e.body[:0]
	for i, m := range b.Messages {
		if e.compact {
			e.body = wire.RawEncoding.AppendCompactMessage(e.body, m, b.SharedFrames(i))
		} else {
			e.body = wire.RawEncoding.AppendBatchMessage(e.body, m, b.SharedFrames(i))
		}
	}
	if ctrl != nil {
		if e.compact {
			e.body = wire.AppendCompactFrame(e.body, ctrl)
		} else {
			e.body = wire.AppendBatchFrame(e.body, ctrl)
		}
	}
	dst = append(dst, "--"...)
	dst = append(dst, e.boundary...)
	// Every part says what it holds: with the response's nosniff, a
	// browser never guesses a type from the first bytes of a batch.
	dst = append(dst, "\r\nContent-Type: "+PartContentType+"\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(e.body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, e.body...)
	return append(dst, "\r\n"...)
}
