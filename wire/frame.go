package wire

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FrameType is the first byte of every frame (PROTOCOL.md section 4).
type FrameType byte

// Frame types.
const (
	FrameText         FrameType = 'm' // text message, raw UTF-8
	FrameTextBase64   FrameType = 'M' // text message, base64 of its UTF-8
	FrameBinary       FrameType = 'b' // binary message, raw bytes
	FrameBinaryBase64 FrameType = 'B' // binary message, base64
	FrameAck          FrameType = 'a' // decimal count of messages received
	FrameHeartbeat    FrameType = 'h' // empty
	FrameClose        FrameType = 'c' // code, then optionally a space and the reason
)

// Frame is one decoded frame. Message is set for the four message types,
// Received for FrameAck and Close for FrameClose.
type Frame struct {
	Type     FrameType
	Message  Message
	Received uint64
	Close    CloseError
}

// IsMessage reports whether f carries an application message.
func (f *Frame) IsMessage() bool {
	switch f.Type {
	case FrameText, FrameTextBase64, FrameBinary, FrameBinaryBase64:
		return true
	}
	return false
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Encoding says which message frame types an encoder may use.
type Encoding uint8

const (
	// RawEncoding writes messages as FrameText and FrameBinary.
	RawEncoding Encoding = iota
	// TextOnlyEncoding writes binary messages as FrameBinaryBase64 and text
	// messages that hold a carriage return or line feed as FrameTextBase64,
	// for carriers that take one line of text (server-sent events).
	TextOnlyEncoding
)

// MessageFrameType returns the frame type enc uses for m.
func (enc Encoding) MessageFrameType(m Message) FrameType {
	if m.Type == Binary {
		if enc == TextOnlyEncoding {
			return FrameBinaryBase64
		}
		return FrameBinary
	}
	if enc == TextOnlyEncoding && hasLineBreak(m.Data) {
		return FrameTextBase64
	}
	return FrameText
}

func hasLineBreak(p []byte) bool {
	for _, c := range p {
		if c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// FrameLen returns how many bytes AppendMessage writes for m.
func (enc Encoding) FrameLen(m Message) int {
	switch enc.MessageFrameType(m) {
	case FrameTextBase64, FrameBinaryBase64:
		return 1 + base64.StdEncoding.EncodedLen(len(m.Data))
	}
	return 1 + len(m.Data)
}

// AppendMessage appends m as one frame (type byte and payload).
func (enc Encoding) AppendMessage(dst []byte, m Message) []byte {
	t := enc.MessageFrameType(m)
	dst = append(dst, byte(t))
	switch t {
	case FrameTextBase64, FrameBinaryBase64:
		return base64.StdEncoding.AppendEncode(dst, m.Data)
	}
	return append(dst, m.Data...)
}

// SharedFrame returns m's frame in enc as shared holds it, building it
// there the first time: a message queued for many sessions at once (a
// topic's publish, session.Local.SendShared) is encoded once per encoding,
// and every connection writing it in enc is given the same bytes, which it
// must not change. A nil shared builds a new frame.
func (enc Encoding) SharedFrame(m Message, shared *Frames) []byte {
	return shared.Frame(enc, func() []byte {
		return enc.AppendMessage(make([]byte, 0, enc.FrameLen(m)), m)
	})
}

// AppendAck appends an acknowledgement of received messages.
func AppendAck(dst []byte, received uint64) []byte {
	dst = append(dst, byte(FrameAck))
	return strconv.AppendUint(dst, received, 10)
}

// AppendHeartbeat appends a heartbeat frame.
func AppendHeartbeat(dst []byte) []byte {
	return append(dst, byte(FrameHeartbeat))
}

// AppendClose appends a close frame, its reason made fit to travel by
// TruncateReason.
func AppendClose(dst []byte, ce CloseError) []byte {
	dst = append(dst, byte(FrameClose))
	dst = strconv.AppendInt(dst, int64(ce.Code), 10)
	if ce.Reason != "" {
		dst = append(dst, ' ')
		dst = append(dst, TruncateReason(ce.Reason)...)
	}
	return dst
}

// TruncateReason returns r as a close frame and a WebSocket close carry
// it (PROTOCOL.md section 4): valid UTF-8, each invalid sequence replaced
// by U+FFFD, then cut to at most MaxReasonBytes at a rune boundary.
func TruncateReason(r string) string {
	if !utf8.ValidString(r) {
		r = strings.ToValidUTF8(r, "\uFFFD")
	}
	if len(r) <= MaxReasonBytes {
		return r
	}
	n := MaxReasonBytes
	for n > 0 && !utf8.RuneStart(r[n]) {
		n--
	}
	return r[:n]
}

// strictBase64 rejects nonzero padding bits, so that every message has one
// base64 form.
var strictBase64 = base64.StdEncoding.Strict()

// ParseFrame decodes one frame. Message payloads of raw frames alias p;
// base64 payloads are decoded into new memory. maxMessage bounds the decoded
// size of a message; a larger one returns an error wrapping ErrMessageTooBig.
func ParseFrame(p []byte, maxMessage int) (Frame, error) {
	if len(p) == 0 {
		return Frame{}, malformed("empty frame")
	}
	f := Frame{Type: FrameType(p[0])}
	body := p[1:]
	switch f.Type {
	case FrameText, FrameBinary:
		if len(body) > maxMessage {
			return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooBig, len(body), maxMessage)
		}
		f.Message = Message{Type: Binary, Data: body}
	case FrameTextBase64, FrameBinaryBase64:
		// Subtract rather than add: maxMessage may be math.MaxInt.
		if base64.StdEncoding.DecodedLen(len(body))-2 > maxMessage {
			return Frame{}, fmt.Errorf("%w: limit %d", ErrMessageTooBig, maxMessage)
		}
		// The decoder skips CR and LF; RFC 4648 forbids bytes outside the
		// alphabet, and a line break would end an SSE data line.
		if hasLineBreak(body) {
			return Frame{}, malformed("invalid base64: line break")
		}
		data, err := strictBase64.AppendDecode(nil, body)
		if err != nil {
			return Frame{}, malformed("invalid base64: %v", err)
		}
		if len(data) > maxMessage {
			return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooBig, len(data), maxMessage)
		}
		f.Message = Message{Type: Binary, Data: data}
	case FrameAck:
		n, err := parseCount(body)
		if err != nil {
			return Frame{}, err
		}
		f.Received = n
		return f, nil
	case FrameHeartbeat:
		if len(body) != 0 {
			return Frame{}, malformed("heartbeat with a payload")
		}
		return f, nil
	case FrameClose:
		ce, err := parseClose(body)
		if err != nil {
			return Frame{}, err
		}
		f.Close = ce
		return f, nil
	default:
		return Frame{}, malformed("unknown frame type %q", p[0])
	}
	if f.Type == FrameText || f.Type == FrameTextBase64 {
		if !utf8.Valid(f.Message.Data) {
			return Frame{}, malformed("text message is not valid UTF-8")
		}
		f.Message.Type = Text
	}
	return f, nil
}

// parseCount parses ASCII digits with no sign and no leading zero.
func parseCount(p []byte) (uint64, error) {
	if len(p) == 0 || len(p) > 20 || (p[0] == '0' && len(p) > 1) {
		return 0, malformed("invalid count %q", p)
	}
	var n uint64
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, malformed("invalid count %q", p)
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, malformed("count overflows: %q", p)
		}
		n = n*10 + d
	}
	return n, nil
}

func parseClose(p []byte) (CloseError, error) {
	codeEnd := len(p)
	for i, c := range p {
		if c == ' ' {
			codeEnd = i
			break
		}
	}
	if codeEnd == 0 || codeEnd > 4 {
		return CloseError{}, malformed("invalid close code %q", p[:codeEnd])
	}
	n, err := parseCount(p[:codeEnd])
	if err != nil {
		return CloseError{}, err
	}
	code := StatusCode(n)
	if !code.Valid() {
		return CloseError{}, malformed("close code %d not allowed", n)
	}
	var reason []byte
	if codeEnd < len(p) {
		reason = p[codeEnd+1:]
	}
	if len(reason) > MaxReasonBytes {
		return CloseError{}, malformed("close reason longer than %d bytes", MaxReasonBytes)
	}
	if !utf8.Valid(reason) {
		return CloseError{}, malformed("close reason is not valid UTF-8")
	}
	return CloseError{Code: code, Reason: string(reason)}, nil
}
