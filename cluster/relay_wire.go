package cluster

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The relay's messages: what a node asks the owner of a session over the
// bus (a request on tether.node.<owner>) and what the owner answers.
//
// Every message starts with the relay version (relayVersion) and a kind
// byte: a request's call kind, or a reply's result. Numbers are unsigned
// varints (encoding/binary's Uvarint); strings and message data are a
// varint length and the bytes. A request then holds:
//
//	relayer node id                    (string; the node asking, for whoever
//	                                    watches the bus: the owner does not use it)
//	session id, token                  (strings; every call but ping)
//	lookup:      nothing more
//	attach:      transport (string), received, flags (1: acks in band)
//	pull:        link, wait in ms, max bytes
//	detach:      link
//	deliver:     seq, wait in ms, count, then count messages (also
//	             deliverInBand, for a connection that carries
//	             acknowledgements: the owner's Deliver need not wait for
//	             the received count to be stored, see
//	             session.AcknowledgedInBand)
//	acknowledge: received
//	fault, closeFromClient: close code, reason (string)
//	ping:        nothing (no session id, no token)
//
// A message is a type byte (1 text, 2 binary) and its data. A reply holds,
// after its result: for attach with resultOK, the link; for pull with
// resultOK, a batch: first, flags (1: ack due, 2: close), received when an
// ack is due, close code and reason when closing, count, then count
// messages; for resultClosed, the session's close code and reason.
//
// Parsing is defensive: a message that is cut short, too long, has an
// unknown kind or version, a string over its bound, a count beyond what
// its bytes can hold, or text that is not UTF-8, is malformed: the owner
// answers resultMalformed and the node that asked treats that, like a
// malformed reply, as a failed call. Both log it at Warn and count it
// (Node.Malformed). The token is never logged.
const relayVersion = 1

// Call kinds of relay requests.
const (
	callLookup byte = iota + 1
	callAttach
	callPull
	callDetach
	callDeliver
	callAcknowledge
	callFault
	callCloseFromClient
	callPing
	callDeliverInBand // deliver, from a connection that carries acknowledgements (a WebSocket)
)

// Results of relay replies.
const (
	resultOK          byte = iota + 1
	resultUnknown          // no such session, or a wrong token
	resultStale            // attach: session.ErrStaleAttach
	resultSuperseded       // pull: session.ErrSuperseded, or a link the owner no longer has
	resultFinished         // pull: session.ErrFinished
	resultGap              // deliver: session.ErrSequenceGap
	resultClosed           // deliver: the session's CloseError follows
	resultBadAck           // acknowledge: session.ErrBadAck
	resultBusy             // deliver: the session's inbound queue stayed full; pull: a pull of the link is in progress
	resultMalformed        // the request could not be parsed
	resultUnavailable      // the session cannot be served here now (it lost its lease, or is handed over): session.ErrUnreachable
)

// Bounds of the strings a relay message holds.
const (
	maxIDBytes        = 128
	maxTokenBytes     = 64
	maxTransportBytes = 32
)

// relayHeaderRoom is what a request or reply holds besides its messages'
// data, at most: the version and kind, three strings, a few numbers.
const relayHeaderRoom = 2 + 3*(binary.MaxVarintLen64+maxIDBytes) + 8*binary.MaxVarintLen64 + wire.MaxReasonBytes

// messageRoom is what a message takes in a relay message besides its data.
const messageRoom = 1 + binary.MaxVarintLen64

// request is a parsed relay request. Its strings are copies; msgs alias
// the request's bytes.
type request struct {
	kind       byte
	id, token  string
	transport  string
	received   uint64
	acksInBand bool
	link       uint64
	wait       time.Duration
	maxBytes   int
	seq        uint64
	msgs       []wire.Message
	close      wire.CloseError
}

// appendHeader appends a request's version, kind, relayer, and for every
// kind but ping the session id and token.
func appendHeader(b []byte, kind byte, relayer, id, token string) []byte {
	b = append(b, relayVersion, kind)
	b = appendString(b, relayer)
	if kind != callPing {
		b = appendString(b, id)
		b = appendString(b, token)
	}
	return b
}

// appendUvarint appends v as an unsigned varint.
func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendMessage(b []byte, m wire.Message) []byte {
	b = append(b, byte(m.Type))
	b = binary.AppendUvarint(b, uint64(len(m.Data)))
	return append(b, m.Data...)
}

func appendClose(b []byte, ce wire.CloseError) []byte {
	b = binary.AppendUvarint(b, uint64(ce.Code))
	return appendString(b, ce.Reason)
}

func appendMillis(b []byte, d time.Duration) []byte {
	return binary.AppendUvarint(b, uint64(max(d, 0)/time.Millisecond))
}

// appendBatch appends a pull reply's batch.
func appendBatch(b []byte, bt *session.Batch) []byte {
	b = binary.AppendUvarint(b, bt.First)
	var flags byte
	if bt.AckDue {
		flags |= 1
	}
	if bt.Close != nil {
		flags |= 2
	}
	b = append(b, flags)
	if bt.AckDue {
		b = binary.AppendUvarint(b, bt.Received)
	}
	if bt.Close != nil {
		b = appendClose(b, *bt.Close)
	}
	b = binary.AppendUvarint(b, uint64(len(bt.Messages)))
	for _, m := range bt.Messages {
		b = appendMessage(b, m)
	}
	return b
}

// The relay's parsers read with the reader of broker_wire.go; these are
// the reads only relay messages make.

// count reads a number that is no more than limit.
func (r *reader) count(what string, limit uint64) uint64 {
	v := r.uvarint(what)
	if v > limit {
		r.fail("%s %d over %d", what, v, limit)
		return 0
	}
	return v
}

// text reads a string of at most limit bytes of UTF-8, as a copy.
func (r *reader) text(what string, limit int) string {
	p := r.bytes(what, limit)
	if !utf8.Valid(p) {
		r.fail("%s not UTF-8", what)
		return ""
	}
	return string(p)
}

func (r *reader) millis(what string) time.Duration {
	return time.Duration(r.count(what, math.MaxInt64/uint64(time.Millisecond))) * time.Millisecond
}

// message reads a message whose data aliases the relay message.
func (r *reader) message() wire.Message {
	typ := wire.MessageType(r.byte("message type"))
	data := r.bytes("message", len(r.p))
	if r.err == nil && (typ != wire.Text && typ != wire.Binary || typ == wire.Text && !utf8.Valid(data)) {
		r.fail("message of type %d, %d bytes", typ, len(data))
	}
	return wire.Message{Type: typ, Data: data}
}

// messages reads a count and that many messages into dst[:0]. Each takes
// at least two bytes, which bounds the count before anything is
// allocated.
func (r *reader) messages(dst []wire.Message) []wire.Message {
	n := r.count("message count", uint64(len(r.p)/2))
	dst = dst[:0]
	for range n {
		m := r.message()
		if r.err != nil {
			return dst[:0]
		}
		dst = append(dst, m)
	}
	return dst
}

func (r *reader) closeError() wire.CloseError {
	code := wire.StatusCode(r.count("close code", 4999))
	reason := r.text("close reason", wire.MaxReasonBytes)
	if r.err == nil && !code.Valid() {
		r.fail("close code %d", code)
	}
	return wire.CloseError{Code: code, Reason: reason}
}

// parseRequest parses a relay request.
func parseRequest(data []byte) (request, error) {
	r := reader{p: data}
	var q request
	if v := r.byte("version"); v != relayVersion {
		return q, fmt.Errorf("%w: relay version %d", errMalformed, v)
	}
	q.kind = r.byte("kind")
	r.bytes("relayer", maxIDBytes) // names the node asking, for whoever watches the bus; unused
	if q.kind != callPing {
		q.id = r.text("session", maxIDBytes)
		q.token = r.text("token", maxTokenBytes)
	}
	switch q.kind {
	case callLookup, callPing:
	case callAttach:
		q.transport = r.text("transport", maxTransportBytes)
		q.received = r.uvarint("received")
		flags := r.byte("flags")
		q.acksInBand = flags&1 != 0
		if flags&^1 != 0 {
			r.fail("attach flags %#x", flags)
		}
	case callPull:
		q.link = r.uvarint("link")
		q.wait = r.millis("wait")
		q.maxBytes = int(r.count("max bytes", math.MaxInt32))
	case callDetach:
		q.link = r.uvarint("link")
	case callDeliver, callDeliverInBand:
		q.seq = r.uvarint("seq")
		q.wait = r.millis("wait")
		q.msgs = r.messages(nil)
		if r.err == nil && (q.seq == 0 || len(q.msgs) == 0) {
			r.fail("deliver of %d messages from %d", len(q.msgs), q.seq)
		}
	case callAcknowledge:
		q.received = r.uvarint("received")
	case callFault, callCloseFromClient:
		q.close = r.closeError()
	default:
		r.fail("call kind %d", q.kind)
	}
	r.end()
	return q, r.err
}

// reply is a parsed relay reply. Its batch's messages alias the reply's
// bytes.
type reply struct {
	result byte
	link   uint64
	batch  session.Batch
	close  wire.CloseError
}

// parseReply parses the reply to a request of kind. msgs, when not nil,
// is reused for a pull's messages.
func parseReply(kind byte, data []byte, msgs []wire.Message) (reply, error) {
	r := reader{p: data}
	var p reply
	if v := r.byte("version"); v != relayVersion {
		return p, fmt.Errorf("%w: relay version %d", errMalformed, v)
	}
	p.result = r.byte("result")
	switch {
	case p.result == 0 || p.result > resultUnavailable:
		r.fail("result %d", p.result)
	case p.result == resultClosed:
		p.close = r.closeError()
	case p.result != resultOK:
	case kind == callAttach:
		p.link = r.uvarint("link")
	case kind == callPull:
		b := &p.batch
		b.First = r.uvarint("first")
		flags := r.byte("flags")
		if flags&^3 != 0 {
			r.fail("batch flags %#x", flags)
		}
		if flags&1 != 0 {
			b.AckDue, b.Received = true, r.uvarint("received")
		}
		if flags&2 != 0 {
			ce := r.closeError()
			b.Close = &ce
		}
		b.Messages = r.messages(msgs)
		if r.err == nil && len(b.Messages) > 0 && b.First == 0 {
			r.fail("messages numbered from 0")
		}
	}
	r.end()
	return p, r.err
}
