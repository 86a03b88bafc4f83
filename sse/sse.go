package sse

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// Name is the transport's name in negotiate responses and URLs.
const Name = transport.SSE

// LastEventIDHeader is the header a browser EventSource sends when it
// reconnects by itself: the id of the last message event it received.
const LastEventIDHeader = "Last-Event-ID"

// Options configure the SSE transport. A nil *Options means defaults.
type Options struct {
	// MaxStreamBytes is how many bytes a response carries before it ends and
	// the client opens the next one. Default 1 MiB
	// (transport.DefaultMaxStreamBytes).
	MaxStreamBytes int
}

// retryDelay is the reconnection delay each response asks a browser
// EventSource to wait before it reconnects by itself, sent as the event
// stream's retry field after the padding comment that starts the response
// (transport.DefaultPreludeBytes in all).
const retryDelay = 500 * time.Millisecond

// Transport is the server-sent events transport. It is safe for
// concurrent use.
type Transport struct {
	maxStreamBytes int
	prelude        []byte
}

// New returns an SSE transport. opts is not retained.
func New(opts *Options) *Transport {
	maxStreamBytes := transport.DefaultMaxStreamBytes
	if opts != nil && opts.MaxStreamBytes > 0 {
		maxStreamBytes = opts.MaxStreamBytes
	}
	return &Transport{maxStreamBytes: maxStreamBytes, prelude: prelude(transport.DefaultPreludeBytes, retryDelay)}
}

// prelude returns a comment line of padding and a retry field, size bytes
// in all when size leaves room for both.
func prelude(size int, retry time.Duration) []byte {
	tail := "retry:" + strconv.FormatInt(retry.Milliseconds(), 10) + "\n\n"
	p := make([]byte, 0, max(size, len(tail)+2))
	if pad := size - len(tail) - 2; pad >= 0 {
		p = append(p, ':')
		p = append(p, bytes.Repeat([]byte{' '}, pad)...)
		p = append(p, '\n')
	}
	return append(p, tail...)
}

// Name implements transport.Transport.
func (*Transport) Name() string { return Name }

// Bidirectional implements transport.Transport: the stream carries only
// server messages.
func (*Transport) Bidirectional() bool { return false }

// ServeAttach implements transport.Transport. The server has already taken
// the client's received count as the larger of the received parameter and
// a Last-Event-ID header (see Received).
func (t *Transport) ServeAttach(w http.ResponseWriter, r *http.Request, a *transport.Attach) {
	st := &transport.Stream{
		Name:           Name,
		ContentType:    "text/event-stream; charset=utf-8",
		Prelude:        t.prelude,
		Encoder:        encoder{},
		MaxStreamBytes: t.maxStreamBytes,
	}
	if httpx.WantsCompact(r) {
		st.ContentType += wire.CompactMediaParam
		st.Encoder = compactEncoder{}
	}
	transport.ServeStream(w, r, a, st)
}

// Received implements transport.ReceivedReader: the count in r's
// Last-Event-ID header; ok is false when the header is absent or not a
// count.
func (t *Transport) Received(r *http.Request) (n uint64, ok bool) {
	v := r.Header.Get(LastEventIDHeader)
	if v == "" || (len(v) > 1 && v[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// encoder writes one event per frame: message events with their number as
// id, control frames without one.
type encoder struct{}

// AppendBatch implements transport.StreamEncoder.
func (encoder) AppendBatch(dst []byte, b *session.Batch, ctrl []byte) []byte {
	for i, m := range b.Messages {
		dst = append(dst, "id:"...)
		dst = strconv.AppendUint(dst, b.First+uint64(i), 10)
		dst = append(dst, "\ndata:"...)
		if shared := b.SharedFrames(i); shared != nil {
			dst = append(dst, wire.TextOnlyEncoding.SharedFrame(m, shared)...)
		} else {
			dst = wire.TextOnlyEncoding.AppendMessage(dst, m)
		}
		dst = append(dst, "\n\n"...)
	}
	if ctrl != nil {
		dst = append(dst, "data:"...)
		dst = appendControl(dst, ctrl)
		dst = append(dst, "\n\n"...)
	}
	return dst
}

// appendControl appends the control frame ctrl with any line break or
// record separator in it (a close reason may hold one) sent as a space.
func appendControl(dst, ctrl []byte) []byte {
	for _, c := range ctrl {
		if c == '\n' || c == '\r' || c == recordSeparator {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// recordSeparator (U+001E) separates the frames of a compact event.
const recordSeparator = 0x1e

// compactEncoder writes one event per batch (PROTOCOL.md section 4.6): the
// frames in one data line, separated by U+001E, and as id the number of the
// batch's last message, so that Last-Event-ID still states the received
// count. Events without messages have no id.
type compactEncoder struct{}

// AppendBatch implements transport.StreamEncoder.
func (compactEncoder) AppendBatch(dst []byte, b *session.Batch, ctrl []byte) []byte {
	msgs := b.Messages
	if len(msgs) == 0 && ctrl == nil {
		return dst
	}
	if len(msgs) > 0 {
		dst = append(dst, "id:"...)
		dst = strconv.AppendUint(dst, b.First+uint64(len(msgs))-1, 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data:"...)
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		if shared := b.SharedFrames(i); shared != nil {
			dst = append(dst, shared.Frame(compactFraming{}, func() []byte { return appendCompactMessage(nil, m) })...)
		} else {
			dst = appendCompactMessage(dst, m)
		}
	}
	if ctrl != nil {
		if len(msgs) > 0 {
			dst = append(dst, recordSeparator)
		}
		dst = appendControl(dst, ctrl)
	}
	return append(dst, "\n\n"...)
}

// compactFraming names the frames of compact events in wire.Frames:
// they differ from TextOnlyEncoding's for text that holds a record
// separator.
type compactFraming struct{}

// appendCompactMessage appends m as TextOnlyEncoding does, except that text
// holding a record separator also travels as base64.
func appendCompactMessage(dst []byte, m wire.Message) []byte {
	if m.Type == wire.Text && bytes.IndexByte(m.Data, recordSeparator) >= 0 {
		dst = append(dst, byte(wire.FrameTextBase64))
		return base64.StdEncoding.AppendEncode(dst, m.Data)
	}
	return wire.TextOnlyEncoding.AppendMessage(dst, m)
}
