package redisbus

import (
	"encoding/binary"
	"errors"
	"time"
)

// Envelope kinds: the first byte of what crosses a request or reply
// channel.
const (
	kindRequest = 'Q'
	kindReply   = 'R'
)

// Reply statuses.
const (
	statusOK     = 0 // the data is the handler's reply
	statusTooBig = 1 // the handler's reply was over MaxPayload; no data
)

// errMalformed is returned by the decoders for what is not an envelope of
// theirs.
var errMalformed = errors.New("redisbus: malformed envelope")

// request is a Request as it crosses Redis.
type request struct {
	id      uint64
	timeout time.Duration // left before the requester's deadline; 0: none
	replyTo string        // the requester's reply channel
	data    []byte
}

// appendRequest appends r's envelope to buf: the kind, the id, the timeout
// in microseconds plus one (0 for none), the reply channel's length and
// name, then the data; the numbers are uvarints.
func appendRequest(buf []byte, r request) []byte {
	buf = append(buf, kindRequest)
	buf = binary.AppendUvarint(buf, r.id)
	var timeout uint64
	if r.timeout > 0 {
		timeout = uint64(min(r.timeout, maxTimeout)/time.Microsecond) + 1
	}
	buf = binary.AppendUvarint(buf, timeout)
	buf = binary.AppendUvarint(buf, uint64(len(r.replyTo)))
	buf = append(buf, r.replyTo...)
	return append(buf, r.data...)
}

// maxTimeout bounds a timeout: a longer one crosses as maxTimeout, and a
// forged one cannot overflow time.Duration.
const maxTimeout = 24 * time.Hour

// parseRequest decodes a request envelope. The request's data is a part
// of msg.
func parseRequest(msg []byte) (request, error) {
	if len(msg) == 0 || msg[0] != kindRequest {
		return request{}, errMalformed
	}
	rest := msg[1:]
	id, n := binary.Uvarint(rest)
	if n <= 0 {
		return request{}, errMalformed
	}
	rest = rest[n:]
	timeout, n := binary.Uvarint(rest)
	if n <= 0 || timeout > uint64(maxTimeout/time.Microsecond)+1 {
		return request{}, errMalformed
	}
	rest = rest[n:]
	size, n := binary.Uvarint(rest)
	if n <= 0 || size > uint64(len(rest)-n) {
		return request{}, errMalformed
	}
	rest = rest[n:]
	r := request{id: id, replyTo: string(rest[:size]), data: rest[size:]}
	if timeout > 0 {
		r.timeout = time.Duration(timeout-1) * time.Microsecond
	}
	return r, nil
}

// reply is a handler's reply as it crosses Redis.
type reply struct {
	id     uint64
	status byte
	data   []byte
}

// appendReply appends r's envelope to buf: the kind, the id, the status,
// then the data.
func appendReply(buf []byte, r reply) []byte {
	buf = append(buf, kindReply)
	buf = binary.AppendUvarint(buf, r.id)
	buf = append(buf, r.status)
	return append(buf, r.data...)
}

// parseReply decodes a reply envelope. The reply's data is a part of msg.
func parseReply(msg []byte) (reply, error) {
	if len(msg) == 0 || msg[0] != kindReply {
		return reply{}, errMalformed
	}
	id, n := binary.Uvarint(msg[1:])
	if n <= 0 || len(msg) < 1+n+1 {
		return reply{}, errMalformed
	}
	r := reply{id: id, status: msg[1+n], data: msg[1+n+1:]}
	if r.status != statusOK && r.status != statusTooBig {
		return reply{}, errMalformed
	}
	return r, nil
}
