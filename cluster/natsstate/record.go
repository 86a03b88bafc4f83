package natsstate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// record is a session's state as one KV value holds it. A record is never
// changed once made: apply returns a new one, so that the Store may share
// the one it keeps for a lease between concurrent calls.
type record struct {
	epoch    uint64
	node     string
	released bool // the owner released the lease (Release)
	token    [sha256.Size]byte
	sent     uint64
	acked    uint64
	received uint64
	info     []byte
	topics   []string          // sorted
	offsets  map[string]uint64 // nil for none
	out      []wire.Message    // numbers acked+1 to sent
	infos    map[string][]byte // the presence info of the topics joined with any; nil for none
}

// encode returns the record's value:
//
//	byte     Version
//	uvarint  epoch
//	string   node            (a string is a uvarint length and its bytes)
//	byte     1 if released, else 0
//	32 bytes SHA-256 of the token
//	uvarint  sent, acked, received
//	string   info
//	uvarint  topic count, then each topic as a string, sorted
//	uvarint  offset count, then each as a string (topic) and a uvarint
//	         (offset), sorted by topic
//	then sent - acked messages, each a byte (type) and a string (data)
//	then, when a topic has presence info, uvarint info count, then each
//	         as a string (topic) and a string (info), sorted by topic
//	         (absent from values written before infos were kept)
func (r *record) encode() []byte {
	n := 64 + len(r.node) + len(r.info)
	for _, t := range r.topics {
		n += len(t) + 2
	}
	for t := range r.offsets {
		n += len(t) + 12
	}
	for _, m := range r.out {
		n += len(m.Data) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, Version)
	b = binary.AppendUvarint(b, r.epoch)
	b = appendString(b, r.node)
	b = append(b, boolByte(r.released))
	b = append(b, r.token[:]...)
	b = binary.AppendUvarint(b, r.sent)
	b = binary.AppendUvarint(b, r.acked)
	b = binary.AppendUvarint(b, r.received)
	b = appendString(b, string(r.info))
	b = binary.AppendUvarint(b, uint64(len(r.topics)))
	for _, t := range r.topics {
		b = appendString(b, t)
	}
	topics := make([]string, 0, len(r.offsets))
	for t := range r.offsets {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	b = binary.AppendUvarint(b, uint64(len(topics)))
	for _, t := range topics {
		b = appendString(b, t)
		b = binary.AppendUvarint(b, r.offsets[t])
	}
	for _, m := range r.out {
		b = append(b, byte(m.Type))
		b = appendString(b, string(m.Data))
	}
	if len(r.infos) > 0 {
		b = binary.AppendUvarint(b, uint64(len(r.infos)))
		for _, t := range slices.Sorted(maps.Keys(r.infos)) {
			b = appendString(b, t)
			b = appendString(b, string(r.infos[t]))
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decode parses a value that encode made. It returns an error wrapping
// cluster.ErrStateVersion for a value of another version, and one wrapping
// cluster.ErrStateCorrupt for anything else that is not what encode makes.
func decode(b []byte) (*record, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty value", cluster.ErrStateCorrupt)
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", cluster.ErrStateVersion, b[0], Version)
	}
	d := decoder{b: b[1:]}
	r := &record{}
	r.epoch = d.uvarint("epoch")
	r.node = d.string("node")
	switch d.byte("released") {
	case 0:
	case 1:
		r.released = true
	default:
		d.fail("released flag")
	}
	copy(r.token[:], d.bytes(sha256.Size, "token"))
	r.sent = d.uvarint("sent")
	r.acked = d.uvarint("acked")
	r.received = d.uvarint("received")
	r.info = []byte(d.string("info"))
	for range d.count("topics") {
		r.topics = append(r.topics, d.string("topic"))
	}
	if !slices.IsSorted(r.topics) {
		d.fail("topics out of order")
	}
	for range d.count("offsets") {
		if r.offsets == nil {
			r.offsets = make(map[string]uint64)
		}
		t := d.string("offset topic")
		r.offsets[t] = d.uvarint("offset")
	}
	if d.err == nil && (r.epoch == 0 || r.acked > r.sent) {
		d.fail(fmt.Sprintf("epoch %d, acked %d of %d", r.epoch, r.acked, r.sent))
	}
	if d.err == nil && r.sent-r.acked > uint64(len(d.b))/2 {
		d.fail(fmt.Sprintf("%d messages in %d bytes", r.sent-r.acked, len(d.b)))
	}
	if d.err == nil {
		r.out = make([]wire.Message, 0, r.sent-r.acked)
		for n := r.acked + 1; n <= r.sent && d.err == nil; n++ {
			t := wire.MessageType(d.byte("message type"))
			data := d.string("message")
			if t != wire.Text && t != wire.Binary {
				d.fail(fmt.Sprintf("message %d of type %d", n, t))
			}
			r.out = append(r.out, wire.Message{Type: t, Data: []byte(data)})
		}
	}
	if d.err == nil && len(d.b) != 0 {
		for range d.count("infos") {
			if r.infos == nil {
				r.infos = make(map[string][]byte)
			}
			t := d.string("info topic")
			r.infos[t] = []byte(d.string("topic info"))
		}
		if d.err == nil && r.infos == nil {
			d.fail("no infos after the messages")
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d bytes after the infos", len(d.b)))
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// decoder reads a value; its first failure sticks in err, and every read
// after it returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", cluster.ErrStateCorrupt, what)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte(what string) byte {
	b := d.bytes(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *decoder) bytes(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) string(what string) string {
	return string(d.bytes(d.uvarint(what), what))
}

// count reads a count of items that take at least one byte each.
func (d *decoder) count(what string) uint64 {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return 0
	}
	return n
}

// validate checks e before it is applied to any state: it returns
// cluster.ErrInvalidBatch for messages with no number or of a type neither
// Text nor Binary.
func validate(e *session.Entry) error {
	if len(e.Messages) > 0 && e.First == 0 {
		return fmt.Errorf("%w: message numbers start at 1", cluster.ErrInvalidBatch)
	}
	for i, m := range e.Messages {
		if m.Type != wire.Text && m.Type != wire.Binary {
			return fmt.Errorf("%w: message %d of type %d", cluster.ErrInvalidBatch, e.First+uint64(i), m.Type)
		}
	}
	if len(e.SubscribeInfo) != 0 && len(e.SubscribeInfo) != len(e.Subscribe) {
		return fmt.Errorf("%w: %d presence infos for %d topics", cluster.ErrInvalidBatch, len(e.SubscribeInfo), len(e.Subscribe))
	}
	return nil
}

// apply returns r with e applied, as StateStore.Write says: messages at or
// below the stored count skipped, counters raised, topics and offsets
// updated. It returns cluster.ErrOutOfOrder for a batch that does not
// follow r. e has passed validate.
func (r *record) apply(e *session.Entry) (*record, error) {
	sent := r.sent
	if len(e.Messages) > 0 {
		if e.First > r.sent+1 {
			return nil, fmt.Errorf("%w: message %d follows %d", cluster.ErrOutOfOrder, e.First, r.sent)
		}
		sent = max(sent, e.First+uint64(len(e.Messages))-1)
	}
	if e.Acked > sent {
		return nil, fmt.Errorf("%w: acknowledged %d of %d", cluster.ErrOutOfOrder, e.Acked, sent)
	}
	n := *r
	n.sent = sent
	n.acked = max(r.acked, e.Acked)
	n.received = max(r.received, e.Received)
	// The messages kept: those of r above the new acked count, then those
	// of e above r's sent count.
	n.out = make([]wire.Message, 0, n.sent-n.acked)
	if n.acked < r.sent {
		n.out = append(n.out, r.out[n.acked-r.acked:]...)
	}
	for i, m := range e.Messages {
		if num := e.First + uint64(i); num > r.sent && num > n.acked {
			n.out = append(n.out, wire.Message{Type: m.Type, Data: bytes.Clone(m.Data)})
		}
	}
	if len(e.Subscribe)+len(e.Unsubscribe) > 0 {
		n.topics = slices.Clone(r.topics)
		for _, t := range e.Subscribe {
			if i, found := slices.BinarySearch(n.topics, t); !found {
				n.topics = slices.Insert(n.topics, i, t)
			}
		}
		for _, t := range e.Unsubscribe {
			if i, found := slices.BinarySearch(n.topics, t); found {
				n.topics = slices.Delete(n.topics, i, i+1)
			}
		}
		if len(n.topics) == 0 {
			n.topics = nil
		}
		// A topic joined takes the info it was joined with (none for
		// none); one left loses it.
		n.infos = maps.Clone(r.infos)
		for i, t := range e.Subscribe {
			if i < len(e.SubscribeInfo) && len(e.SubscribeInfo[i]) > 0 {
				if n.infos == nil {
					n.infos = make(map[string][]byte)
				}
				n.infos[t] = bytes.Clone(e.SubscribeInfo[i])
			} else {
				delete(n.infos, t)
			}
		}
		for _, t := range e.Unsubscribe {
			delete(n.infos, t)
		}
		if len(n.infos) == 0 {
			n.infos = nil
		}
	}
	if len(e.TopicOffsets) > 0 || (len(e.Unsubscribe) > 0 && r.offsets != nil) {
		n.offsets = make(map[string]uint64, len(r.offsets)+len(e.TopicOffsets))
		for t, o := range r.offsets {
			n.offsets[t] = o
		}
		for _, at := range e.TopicOffsets {
			if cur, ok := n.offsets[at.Topic]; !ok || at.Offset > cur {
				n.offsets[at.Topic] = at.Offset
			}
		}
		for _, t := range e.Unsubscribe {
			delete(n.offsets, t)
		}
		if len(n.offsets) == 0 {
			n.offsets = nil
		}
	}
	return &n, nil
}

// state returns the cluster.State of session id that r holds.
func (r *record) state(id string) *cluster.State {
	st := &cluster.State{
		ID: id, Sent: r.sent, Acked: r.acked, Received: r.received,
		Out: slices.Clone(r.out), Topics: slices.Clone(r.topics), Info: bytes.Clone(r.info),
	}
	if r.offsets != nil {
		st.TopicOffsets = make(map[string]uint64, len(r.offsets))
		for t, o := range r.offsets {
			st.TopicOffsets[t] = o
		}
	}
	for t, info := range r.infos {
		if st.TopicInfo == nil {
			st.TopicInfo = make(map[string][]byte, len(r.infos))
		}
		st.TopicInfo[t] = bytes.Clone(info)
	}
	return st
}
