package redisbus

import (
	"bytes"
	"testing"
	"time"
)

var requests = []request{
	{id: 1, replyTo: "{tether}.reply.abc", data: []byte("data")},
	{id: 1 << 63, timeout: 1500 * time.Millisecond, replyTo: "r", data: nil},
	{id: 0, timeout: time.Microsecond, replyTo: "", data: []byte{0, 1, 2}},
	{id: 7, timeout: maxTimeout, replyTo: "x", data: []byte("Q")},
}

// TestRequestEnvelope checks that a request envelope decodes to what was
// encoded.
func TestRequestEnvelope(t *testing.T) {
	for _, r := range requests {
		got, err := parseRequest(appendRequest(nil, r))
		if err != nil || got.id != r.id || got.timeout != r.timeout || got.replyTo != r.replyTo || !bytes.Equal(got.data, r.data) {
			t.Errorf("parseRequest(appendRequest(%+v)) = %+v, %v", r, got, err)
		}
	}
}

// TestReplyEnvelope checks that a reply envelope decodes to what was
// encoded, and that an unknown status is malformed.
func TestReplyEnvelope(t *testing.T) {
	for _, r := range []reply{{id: 1, status: statusOK, data: []byte("x")}, {id: 1 << 40, status: statusTooBig}} {
		got, err := parseReply(appendReply(nil, r))
		if err != nil || got.id != r.id || got.status != r.status || !bytes.Equal(got.data, r.data) {
			t.Errorf("parseReply(appendReply(%+v)) = %+v, %v", r, got, err)
		}
	}
	if _, err := parseReply(appendReply(nil, reply{id: 1, status: 9})); err == nil {
		t.Error("parseReply of status 9 = nil error, want errMalformed")
	}
}

// FuzzParseRequest checks that any bytes decode without a panic, and that
// what decodes encodes back to the same bytes.
func FuzzParseRequest(f *testing.F) {
	for _, r := range requests {
		f.Add(appendRequest(nil, r))
	}
	f.Add([]byte("Q\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := parseRequest(msg)
		if err != nil {
			return
		}
		if r.timeout < 0 || r.timeout > maxTimeout {
			t.Fatalf("timeout %v out of range", r.timeout)
		}
		if again, err := parseRequest(appendRequest(nil, r)); err != nil || again.id != r.id || again.timeout != r.timeout || again.replyTo != r.replyTo || !bytes.Equal(again.data, r.data) {
			t.Fatalf("%q decodes to %+v, which does not survive a round trip (%+v, %v)", msg, r, again, err)
		}
	})
}

// FuzzParseReply checks that any bytes decode without a panic.
func FuzzParseReply(f *testing.F) {
	f.Add(appendReply(nil, reply{id: 3, data: []byte("x")}))
	f.Add([]byte("R\x80"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if r, err := parseReply(msg); err == nil && r.status != statusOK && r.status != statusTooBig {
			t.Fatalf("status %d accepted", r.status)
		}
	})
}
