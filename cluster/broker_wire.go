package cluster

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/wire"
)

// What a Broker sends over the bus. Every message starts with one byte
// saying what it is; strings are a uvarint length and their bytes; numbers
// are uvarints.
//
//	publish         'p' origin exclude topic offset type(1 byte) data(rest)
//	presence event  'e' origin seq change(1 byte: 'j' or 'l') topic session info(rest; none on 'l')
//	heartbeat       'h' origin seq
//	goodbye         'g' origin
//	snapshot ask    'q' afterTopic afterSession
//	snapshot page   'a' seq more(1 byte: 0 or 1) count {topic session info}*
//
// origin is the sending node's id, seq a presence sequence number (the
// number of presence events the node has had), exclude a session id or "",
// offset the message's offset in its topic's History (0 without one).
const (
	kindPublish   = 'p'
	kindEvent     = 'e'
	kindHeartbeat = 'h'
	kindGoodbye   = 'g'
	kindAsk       = 'q'
	kindPage      = 'a'

	changeJoined = 'j'
	changeLeft   = 'l'
)

// Subjects of the bus that Brokers use.
const (
	// presenceSubject carries every node's join and leave events.
	presenceSubject = "tether.presence"
	// nodesSubject carries the membership heartbeats.
	nodesSubject = "tether.nodes"
)

// MaxNodeIDBytes is the longest node id NewBroker accepts.
const MaxNodeIDBytes = 64

// maxSessionBytes is the longest session id a Broker carries over the bus.
const maxSessionBytes = 255

// topicSubject returns the subject a topic's publishes travel on: its name
// in base64url, since a topic may hold bytes ("..", ":", "/", "@") a
// subject may not.
func topicSubject(topic string) string {
	return "tether.topic." + base64.RawURLEncoding.EncodeToString([]byte(topic))
}

// snapshotSubject returns the subject on which node id answers the
// requests for its presence snapshot.
func snapshotSubject(id string) string { return presenceSubject + "." + id }

// checkNodeID returns nil for a valid node id: 1 to MaxNodeIDBytes ASCII
// letters, digits, '-' and '_', so that it is one element of a subject.
func checkNodeID(id string) error {
	if id == "" || len(id) > MaxNodeIDBytes {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrInvalidNodeID, len(id), MaxNodeIDBytes)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: byte %#x at %d in %q", ErrInvalidNodeID, c, i, id)
		}
	}
	return nil
}

// errMalformed is wrapped by every error of the parsers below.
var errMalformed = errors.New("malformed bus message")

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// reader takes a bus message apart; the first fault sticks in err and
// every later read returns zero values.
type reader struct {
	p   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
	}
	r.p = nil
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.p) == 0 {
		r.fail("no %s", what)
		return 0
	}
	c := r.p[0]
	r.p = r.p[1:]
	return c
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.fail("bad %s", what)
		return 0
	}
	r.p = r.p[n:]
	return v
}

// bytes returns the next length-prefixed bytes, at most limit of them,
// without a copy.
func (r *reader) bytes(what string, limit int) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(r.p)) {
		r.fail("%s of %d bytes (limit %d, %d left)", what, n, limit, len(r.p))
		return nil
	}
	b := r.p[:n:n]
	r.p = r.p[n:]
	return b
}

func (r *reader) nodeID(what string) string {
	id := string(r.bytes(what, MaxNodeIDBytes))
	if r.err == nil {
		if err := checkNodeID(id); err != nil {
			r.fail("%s: %v", what, err)
		}
	}
	return id
}

func (r *reader) topic() string {
	t := string(r.bytes("topic", broker.MaxTopicBytes))
	if r.err == nil {
		if err := broker.CheckTopic(t); err != nil {
			r.fail("%v", err)
		}
	}
	return t
}

func (r *reader) session() string {
	s := string(r.bytes("session", maxSessionBytes))
	if r.err == nil && s == "" {
		r.fail("empty session id")
	}
	return s
}

// end fails unless everything was read.
func (r *reader) end() {
	if r.err == nil && len(r.p) != 0 {
		r.fail("%d bytes after the end", len(r.p))
	}
}

// publication is a publish as it travels from its node to the others.
type publication struct {
	origin  string
	exclude string
	topic   string
	offset  uint64 // in the topic's History; 0 without one
	message wire.Message
}

func appendPublication(dst []byte, p *publication) []byte {
	dst = append(dst, kindPublish)
	dst = appendString(dst, p.origin)
	dst = appendString(dst, p.exclude)
	dst = appendString(dst, p.topic)
	dst = binary.AppendUvarint(dst, p.offset)
	dst = append(dst, byte(p.message.Type))
	return append(dst, p.message.Data...)
}

// parsePublication parses a publish; its message's Data is p's bytes,
// not a copy. It does not check the message itself (see Broker.receive).
func parsePublication(p []byte) (publication, error) {
	r := reader{p: p}
	if k := r.byte("kind"); r.err == nil && k != kindPublish {
		r.fail("kind %q, want a publish", k)
	}
	var pub publication
	pub.origin = r.nodeID("origin")
	pub.exclude = string(r.bytes("exclude", maxSessionBytes))
	pub.topic = r.topic()
	pub.offset = r.uvarint("offset")
	pub.message.Type = wire.MessageType(r.byte("message type"))
	if r.err != nil {
		return publication{}, r.err
	}
	pub.message.Data = r.p
	return pub, nil
}

// presenceEvent is one join or leave of a node's subscriber, numbered by
// its node.
type presenceEvent struct {
	origin string
	seq    uint64
	change broker.PresenceChange
	topic  string
	member broker.Member
}

func appendPresenceEvent(dst []byte, e *presenceEvent) []byte {
	dst = append(dst, kindEvent)
	dst = appendString(dst, e.origin)
	dst = binary.AppendUvarint(dst, e.seq)
	if e.change == broker.Joined {
		dst = append(dst, changeJoined)
	} else {
		dst = append(dst, changeLeft)
	}
	dst = appendString(dst, e.topic)
	dst = appendString(dst, e.member.Session)
	if e.change == broker.Joined {
		dst = append(dst, e.member.Info...)
	}
	return dst
}

// parseMembership parses what travels on presenceSubject and
// nodesSubject: a presence event, a heartbeat or a goodbye. kind says
// which; an event's member info is a copy.
func parseMembership(p []byte) (kind byte, e presenceEvent, err error) {
	r := reader{p: p}
	kind = r.byte("kind")
	switch kind {
	case kindEvent, kindHeartbeat, kindGoodbye:
	default:
		r.fail("kind %q", kind)
	}
	e.origin = r.nodeID("origin")
	if kind == kindGoodbye {
		r.end()
		return kind, e, r.err
	}
	e.seq = r.uvarint("sequence number")
	if r.err == nil && e.seq == 0 && kind == kindEvent {
		r.fail("event number 0")
	}
	if kind == kindHeartbeat {
		r.end()
		return kind, e, r.err
	}
	switch c := r.byte("change"); {
	case r.err != nil:
	case c == changeJoined:
		e.change = broker.Joined
	case c == changeLeft:
		e.change = broker.Left
	default:
		r.fail("change %q", c)
	}
	e.topic = r.topic()
	e.member.Session = r.session()
	if r.err != nil {
		return 0, presenceEvent{}, r.err
	}
	if e.change == broker.Joined && len(r.p) > 0 {
		e.member.Info = append([]byte(nil), r.p...)
	} else {
		r.end()
	}
	return kind, e, r.err
}

func appendHeartbeat(dst []byte, origin string, seq uint64) []byte {
	dst = append(dst, kindHeartbeat)
	dst = appendString(dst, origin)
	return binary.AppendUvarint(dst, seq)
}

func appendGoodbye(dst []byte, origin string) []byte {
	dst = append(dst, kindGoodbye)
	return appendString(dst, origin)
}

// snapshotEntry is one member of a node's presence snapshot.
type snapshotEntry struct {
	topic  string
	member broker.Member
}

// entryBytes is the size of e in a snapshot page.
func entryBytes(e *snapshotEntry) int {
	return 3*binary.MaxVarintLen32 + len(e.topic) + len(e.member.Session) + len(e.member.Info)
}

// pageOverhead is the most bytes a snapshot page takes besides its
// entries.
const pageOverhead = 1 + binary.MaxVarintLen64 + 1 + binary.MaxVarintLen32

func appendAsk(dst []byte, afterTopic, afterSession string) []byte {
	dst = append(dst, kindAsk)
	dst = appendString(dst, afterTopic)
	return appendString(dst, afterSession)
}

// parseAsk parses a request for a snapshot page: the entries after
// (afterTopic, afterSession), in order; "" and "" for the first page.
func parseAsk(p []byte) (afterTopic, afterSession string, err error) {
	r := reader{p: p}
	if k := r.byte("kind"); r.err == nil && k != kindAsk {
		r.fail("kind %q, want a snapshot request", k)
	}
	afterTopic = string(r.bytes("topic", broker.MaxTopicBytes))
	afterSession = string(r.bytes("session", maxSessionBytes))
	r.end()
	return afterTopic, afterSession, r.err
}

func appendPage(dst []byte, seq uint64, more bool, entries []snapshotEntry) []byte {
	dst = append(dst, kindPage)
	dst = binary.AppendUvarint(dst, seq)
	if more {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for i := range entries {
		e := &entries[i]
		dst = appendString(dst, e.topic)
		dst = appendString(dst, e.member.Session)
		dst = appendBytes(dst, e.member.Info)
	}
	return dst
}

// parsePage parses a snapshot page; the entries' info are copies.
func parsePage(p []byte) (seq uint64, more bool, entries []snapshotEntry, err error) {
	r := reader{p: p}
	if k := r.byte("kind"); r.err == nil && k != kindPage {
		r.fail("kind %q, want a snapshot page", k)
	}
	seq = r.uvarint("sequence number")
	switch m := r.byte("more"); {
	case r.err != nil:
	case m > 1:
		r.fail("more %d", m)
	default:
		more = m == 1
	}
	n := r.uvarint("count")
	if n > uint64(len(r.p)) { // each entry takes 3 bytes at least
		r.fail("%d entries in %d bytes", n, len(r.p))
	}
	for range n {
		if r.err != nil {
			break
		}
		var e snapshotEntry
		e.topic = r.topic()
		e.member.Session = r.session()
		if info := r.bytes("info", len(p)); len(info) > 0 {
			e.member.Info = append([]byte(nil), info...)
		}
		entries = append(entries, e)
	}
	r.end()
	if r.err != nil {
		return 0, false, nil, r.err
	}
	return seq, more, entries, nil
}
