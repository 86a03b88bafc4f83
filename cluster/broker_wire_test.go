package cluster

import (
	"reflect"
	"testing"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/wire"
)

// FuzzBrokerMessages feeds any bytes to every parser of what Brokers send
// on the bus: none panics, and what one accepts encodes back to the same
// bytes.
func FuzzBrokerMessages(f *testing.F) {
	f.Add(appendPublication(nil, &publication{origin: "n1", exclude: "s", topic: "room:go", offset: 42, message: wire.Message{Type: wire.Text, Data: []byte("hi")}}))
	f.Add(appendPresenceEvent(nil, &presenceEvent{origin: "n1", seq: 7, change: broker.Joined, topic: "t", member: broker.Member{Session: "s", Info: []byte("i")}}))
	f.Add(appendPresenceEvent(nil, &presenceEvent{origin: "n1", seq: 8, change: broker.Left, topic: "t", member: broker.Member{Session: "s"}}))
	f.Add(appendHeartbeat(nil, "n1", 3))
	f.Add(appendGoodbye(nil, "n1"))
	f.Add(appendAsk(nil, "t", "s"))
	f.Add(appendPage(nil, 9, true, []snapshotEntry{{topic: "t", member: broker.Member{Session: "s", Info: []byte("i")}}, {topic: "u", member: broker.Member{Session: "z"}}}))
	f.Fuzz(func(t *testing.T, p []byte) {
		if pub, err := parsePublication(p); err == nil {
			again, err := parsePublication(appendPublication(nil, &pub))
			if err != nil || !reflect.DeepEqual(again, pub) {
				t.Errorf("publication %q: %+v encodes to %+v, %v", p, pub, again, err)
			}
		}
		if kind, e, err := parseMembership(p); err == nil {
			var q []byte
			switch kind {
			case kindEvent:
				q = appendPresenceEvent(nil, &e)
			case kindHeartbeat:
				q = appendHeartbeat(nil, e.origin, e.seq)
			case kindGoodbye:
				q = appendGoodbye(nil, e.origin)
			}
			againKind, again, err := parseMembership(q)
			if err != nil || againKind != kind || !reflect.DeepEqual(again, e) {
				t.Errorf("%c %q: %+v encodes to %c %+v, %v", kind, p, e, againKind, again, err)
			}
		}
		if topic, session, err := parseAsk(p); err == nil {
			againTopic, againSession, err := parseAsk(appendAsk(nil, topic, session))
			if err != nil || againTopic != topic || againSession != session {
				t.Errorf("snapshot request %q: %q %q encodes to %q %q, %v", p, topic, session, againTopic, againSession, err)
			}
		}
		if seq, more, entries, err := parsePage(p); err == nil {
			againSeq, againMore, again, err := parsePage(appendPage(nil, seq, more, entries))
			if err != nil || againSeq != seq || againMore != more || !reflect.DeepEqual(again, entries) {
				t.Errorf("snapshot page %q: %d %v %+v encodes to %d %v %+v, %v", p, seq, more, entries, againSeq, againMore, again, err)
			}
		}
	})
}
