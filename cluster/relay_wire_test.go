package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// relayNode starts a node on its own connection to bus, with a store, and
// returns it and a session it holds.
func relayNode(t *testing.T, bus *MemoryBus) (*Node, *session.Local) {
	t.Helper()
	conn := bus.Connect()
	n, err := NewNode(conn, &NodeOptions{Logger: slog.New(slog.DiscardHandler), OwnerGoneAfter: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := n.Store(0)
	l := session.New(&session.Config{NodeID: n.ID()}, session.RequestInfo{}, st.Remove)
	if err := st.Add(l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Abort(wire.CloseError{Code: wire.StatusGoingAway})
		l.Expire(0)
		n.Close()
		conn.Close()
	})
	return n, l
}

// ask sends one raw request to node n from a connection of its own and
// returns the reply.
func ask(t *testing.T, bus *MemoryBus, n *Node, req []byte) []byte {
	t.Helper()
	conn := bus.Connect()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data, err := conn.Request(ctx, nodeSubject(n.ID()), req)
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	return data
}

func sessionCall(kind byte, l *session.Local, token string) []byte {
	return appendHeader(nil, kind, "tester00", l.ID(), token)
}

// TestRelayMalformedRequests: each malformed or oversized relay request
// that reaches a node is answered resultMalformed, counted and logged, and
// disturbs nothing: the node goes on serving its session.
func TestRelayMalformedRequests(t *testing.T) {
	bus := NewMemoryBus()
	n, l := relayNode(t, bus)
	valid := sessionCall(callAcknowledge, l, l.Token())
	cases := map[string][]byte{
		"empty":                 {},
		"version only":          {relayVersion},
		"wrong version":         append([]byte{2}, valid[1:]...),
		"unknown kind":          append([]byte{relayVersion, 99}, valid[2:]...),
		"kind zero":             append([]byte{relayVersion, 0}, valid[2:]...),
		"cut short":             valid[:len(valid)-3],
		"trailing bytes":        append(appendUvarint(bytes.Clone(valid), 0), 7),
		"relayer over bound":    appendString([]byte{relayVersion, callPing}, strings.Repeat("r", maxIDBytes+1)),
		"token over bound":      appendString(appendString(appendString([]byte{relayVersion, callLookup}, "r"), l.ID()), strings.Repeat("t", maxTokenBytes+1)),
		"length beyond data":    append([]byte{relayVersion, callPing}, 0xff, 0xff, 0x03, 'x'),
		"varint overflow":       append(sessionCall(callAcknowledge, l, l.Token()), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"invalid UTF-8 id":      appendString(appendString(appendString([]byte{relayVersion, callLookup}, "r"), "\xff\xfe"), "t"),
		"deliver count too big": appendUvarint(appendUvarint(appendUvarint(sessionCall(callDeliver, l, l.Token()), 1), 0), 1<<40),
		"deliver bad type":      appendMessage(appendUvarint(appendUvarint(appendUvarint(sessionCall(callDeliver, l, l.Token()), 1), 0), 1), wire.Message{Type: 9, Data: []byte("x")}),
		"deliver bad text":      appendMessage(appendUvarint(appendUvarint(appendUvarint(sessionCall(callDeliver, l, l.Token()), 1), 0), 1), wire.Message{Type: wire.Text, Data: []byte{0xff}}),
		"deliver seq 0":         appendMessage(appendUvarint(appendUvarint(appendUvarint(sessionCall(callDeliver, l, l.Token()), 0), 0), 1), wire.Message{Type: wire.Text, Data: []byte("x")}),
		"deliver nothing":       appendUvarint(appendUvarint(appendUvarint(sessionCall(callDeliver, l, l.Token()), 1), 0), 0),
		"close code invalid":    appendClose(sessionCall(callFault, l, l.Token()), wire.CloseError{Code: 1006}),
		"attach flags":          append(appendUvarint(appendString(sessionCall(callAttach, l, l.Token()), "longpoll"), 0), 0x80),
	}
	for name, req := range cases {
		before := n.Malformed()
		got := ask(t, bus, n, req)
		if want := result(resultMalformed); !bytes.Equal(got, want) {
			t.Errorf("%s: reply %v, want %v", name, got, want)
		}
		if n.Malformed() != before+1 {
			t.Errorf("%s: Malformed() = %d, want %d", name, n.Malformed(), before+1)
		}
	}
	// The node and its session are undisturbed.
	got := ask(t, bus, n, appendMessage(appendUvarint(appendUvarint(appendUvarint(sessionCall(callDeliver, l, l.Token()), 1), 0), 1), wire.Message{Type: wire.Text, Data: []byte("still here")}))
	if !bytes.Equal(got, result(resultOK)) {
		t.Fatalf("deliver after the malformed requests: %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m, err := l.Recv(ctx); err != nil || string(m.Data) != "still here" {
		t.Fatalf("Recv = %q, %v", m.Data, err)
	}
}

// TestRelayRefusals: calls that are well formed but name no session the
// node holds, with a wrong token, a session that ended, or a link that is
// not the session's, are refused with the documented result and change
// nothing.
func TestRelayRefusals(t *testing.T) {
	bus := NewMemoryBus()
	n, l := relayNode(t, bus)
	_, other := relayNode(t, bus) // held by another node
	deliver := func(l *session.Local, token string) []byte {
		b := appendUvarint(appendUvarint(appendUvarint(sessionCall(callDeliver, l, token), 1), 0), 1)
		return appendMessage(b, wire.Message{Type: wire.Binary, Data: []byte{1}})
	}
	unknown := result(resultUnknown)
	for name, req := range map[string][]byte{
		"wrong token":           sessionCall(callLookup, l, strings.Repeat("A", len(l.Token()))),
		"empty token":           sessionCall(callLookup, l, ""),
		"session of other node": sessionCall(callLookup, other, other.Token()),
		"deliver, wrong token":  deliver(l, "x"),
	} {
		if got := ask(t, bus, n, req); !bytes.Equal(got, unknown) {
			t.Errorf("%s: reply %v, want %v (unknown)", name, got, unknown)
		}
	}
	// A link id never made, or made for another session, is superseded.
	pull := func(link uint64) []byte {
		b := appendUvarint(sessionCall(callPull, l, l.Token()), link)
		return appendUvarint(appendMillis(b, 0), 1024)
	}
	if got := ask(t, bus, n, pull(12345)); !bytes.Equal(got, result(resultSuperseded)) {
		t.Errorf("pull of an unknown link: %v, want superseded", got)
	}
	l2 := session.New(&session.Config{NodeID: n.ID()}, session.RequestInfo{}, nil)
	n.Store(0).Add(l2)
	defer func() { l2.Abort(wire.CloseError{Code: 1000}); l2.Expire(0) }()
	attach := append(appendUvarint(appendString(appendHeader(nil, callAttach, "tester00", l2.ID(), l2.Token()), "longpoll"), 0), 0)
	r, err := parseReply(callAttach, ask(t, bus, n, attach), nil)
	if err != nil || r.result != resultOK {
		t.Fatalf("attach: %v, %v", r, err)
	}
	if got := ask(t, bus, n, pull(r.link)); !bytes.Equal(got, result(resultSuperseded)) {
		t.Errorf("pull of another session's link: %v, want superseded", got)
	}
	// A session that ended: every call is unknown, as on one node.
	l.Close(wire.StatusNormalClosure, "done")
	l.CloseFromClient(wire.CloseError{Code: wire.StatusNormalClosure})
	for _, req := range [][]byte{sessionCall(callLookup, l, l.Token()), deliver(l, l.Token()), appendUvarint(sessionCall(callAcknowledge, l, l.Token()), 0)} {
		if got := ask(t, bus, n, req); !bytes.Equal(got, unknown) {
			t.Errorf("call for a session that ended: %v, want unknown", got)
		}
	}
	if n.Malformed() != 0 {
		t.Errorf("Malformed() = %d, want 0: none of these is malformed", n.Malformed())
	}
}

// TestRelayMessagesRoundTrip: what the relay writes, it reads back.
func TestRelayMessagesRoundTrip(t *testing.T) {
	msgs := []wire.Message{{Type: wire.Text, Data: []byte("héllo")}, {Type: wire.Binary, Data: []byte{0, 1, 2}}, {Type: wire.Binary}}
	req := appendHeader(nil, callDeliver, "relayer1", "node0001.abc", "tok")
	req = appendUvarint(req, 7)
	req = appendMillis(req, 1500*time.Millisecond)
	req = appendUvarint(req, uint64(len(msgs)))
	for _, m := range msgs {
		req = appendMessage(req, m)
	}
	q, err := parseRequest(req)
	if err != nil || q.kind != callDeliver || q.id != "node0001.abc" || q.token != "tok" || q.seq != 7 || q.wait != 1500*time.Millisecond || len(q.msgs) != 3 {
		t.Fatalf("parseRequest = %+v, %v", q, err)
	}
	for i, m := range q.msgs {
		if m.Type != msgs[i].Type || !bytes.Equal(m.Data, msgs[i].Data) {
			t.Fatalf("message %d = %v %q, want %v %q", i, m.Type, m.Data, msgs[i].Type, msgs[i].Data)
		}
	}
	ce := wire.CloseError{Code: 4100, Reason: "bye"}
	b := session.Batch{First: 5, Messages: msgs, AckDue: true, Received: 9, Close: &ce}
	r, err := parseReply(callPull, appendBatch([]byte{relayVersion, resultOK}, &b), nil)
	if err != nil || r.batch.First != 5 || len(r.batch.Messages) != 3 || !r.batch.AckDue || r.batch.Received != 9 || r.batch.Close == nil || *r.batch.Close != ce {
		t.Fatalf("parseReply = %+v, %v", r, err)
	}
}

// FuzzRelayRequest: no request a node may receive makes the parser panic,
// and what it accepts it writes back the same.
func FuzzRelayRequest(f *testing.F) {
	f.Add(appendHeader(nil, callPing, "relayer1", "", ""))
	f.Add(appendUvarint(appendHeader(nil, callAcknowledge, "r", "n.s", "t"), 3))
	f.Add(appendMessage(appendUvarint(appendUvarint(appendUvarint(appendHeader(nil, callDeliver, "r", "n.s", "t"), 1), 10), 1), wire.Message{Type: wire.Text, Data: []byte("x")}))
	f.Add(append(appendUvarint(appendString(appendHeader(nil, callAttach, "r", "n.s", "t"), "sse"), 4), 1))
	f.Add(appendClose(appendHeader(nil, callFault, "r", "n.s", "t"), wire.CloseError{Code: 1009, Reason: "big"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := parseRequest(data)
		if err != nil {
			return
		}
		if q.kind == callDeliver {
			for _, m := range q.msgs {
				if m.Type != wire.Text && m.Type != wire.Binary {
					t.Fatalf("accepted a message of type %d", m.Type)
				}
			}
		}
	})
}

// FuzzRelayReply: no reply a node may receive makes the parser panic.
func FuzzRelayReply(f *testing.F) {
	ce := wire.CloseError{Code: 4006, Reason: "owner gone"}
	f.Add(callPull, appendBatch([]byte{relayVersion, resultOK}, &session.Batch{First: 1, Messages: []wire.Message{{Type: wire.Binary, Data: []byte{1}}}, Close: &ce}))
	f.Add(callAttach, appendUvarint([]byte{relayVersion, resultOK}, 3))
	f.Add(callDeliver, appendClose([]byte{relayVersion, resultClosed}, ce))
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		r, err := parseReply(kind, data, nil)
		if err != nil {
			return
		}
		if r.batch.Close != nil && !r.batch.Close.Code.Valid() {
			t.Fatalf("accepted close code %d", r.batch.Close.Code)
		}
	})
}
