package redisstate

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Write applies b to the session's state in one round trip, if l's epoch is
// still the session's, and extends the lease by LeaseTTL and the state by
// ResumeWindow (see the package doc's Data layout for when it leaves the
// state's expiry as it is). It returns cluster.ErrFenced (the session was taken over: stop
// serving it), cluster.ErrOutOfOrder, cluster.ErrInvalidBatch,
// cluster.ErrNoState, cluster.ErrStateVersion, cluster.ErrStateCorrupt,
// cluster.ErrInvalidSessionID, or an error wrapping cluster.ErrStateUnavailable
// (the batch may or may not be stored: write it again). Nothing is written when
// it returns an error other than the last.
func (s *Store) Write(ctx context.Context, l cluster.Lease, b *session.Entry) error {
	args, err := s.writeArgs(l, b)
	if err != nil {
		return err
	}
	return s.fenced(ctx, writeScript, l, args...)
}

// writeArgs returns the arguments of writeScript after the epoch, or
// cluster.ErrInvalidBatch.
func (s *Store) writeArgs(l cluster.Lease, b *session.Entry) ([]any, error) {
	if len(b.Messages) > 0 && b.First == 0 {
		return nil, fmt.Errorf("%w: message numbers start at 1", cluster.ErrInvalidBatch)
	}
	if len(b.SubscribeInfo) != 0 && len(b.SubscribeInfo) != len(b.Subscribe) {
		return nil, fmt.Errorf("%w: %d presence infos for %d topics", cluster.ErrInvalidBatch, len(b.SubscribeInfo), len(b.Subscribe))
	}
	for i, m := range b.Messages {
		if m.Type != wire.Text && m.Type != wire.Binary {
			return nil, fmt.Errorf("%w: message %d of type %d", cluster.ErrInvalidBatch, b.First+uint64(i), m.Type)
		}
	}
	args := make([]any, 0, 11+3*len(b.Messages)+2*len(b.Subscribe)+len(b.Unsubscribe)+2*len(b.TopicOffsets))
	args = append(args, leaseValue(l), s.lease, s.window, clock(), s.refresh, strconv.Itoa(len(b.Messages)))
	for i, m := range b.Messages {
		args = append(args, strconv.FormatUint(b.First+uint64(i), 10), strconv.Itoa(int(m.Type)), m.Data)
	}
	args = append(args, count(b.Acked), count(b.Received), strconv.Itoa(len(b.Subscribe)))
	for i, t := range b.Subscribe {
		var info []byte
		if i < len(b.SubscribeInfo) {
			info = b.SubscribeInfo[i]
		}
		args = append(args, t, info)
	}
	args = append(args, strconv.Itoa(len(b.Unsubscribe)))
	for _, t := range b.Unsubscribe {
		args = append(args, t)
	}
	args = append(args, strconv.Itoa(len(b.TopicOffsets)))
	for _, at := range b.TopicOffsets {
		args = append(args, at.Topic, strconv.FormatUint(at.Offset, 10))
	}
	return args, nil
}

// count is n as a script takes it: "" for 0, which leaves the count.
func count(n uint64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(n, 10)
}

// parseState decodes the reply of takeOverScript and loadScript:
// {epoch, state hash as flat pairs, out entries, topics}; the state hash's
// fields "o:<topic>" are the topic offsets, and "i:<topic>" the topics'
// presence info. Anything
// unexpected is cluster.ErrStateCorrupt.
func parseState(id string, reply any) (uint64, *cluster.State, error) {
	corrupt := func(format string, a ...any) (uint64, *cluster.State, error) {
		return 0, nil, fmt.Errorf("%w: session %s: %s", cluster.ErrStateCorrupt, id, fmt.Sprintf(format, a...))
	}
	parts, ok := reply.([]any)
	if !ok || len(parts) != 4 {
		return corrupt("reply of %T", reply)
	}
	epoch, err := number(parts[0])
	if err != nil || epoch == 0 {
		return corrupt("epoch %v", parts[0])
	}
	fields, ok := parts[1].([]any)
	if !ok || len(fields)%2 != 0 {
		return corrupt("state hash of %T", parts[1])
	}
	st := &cluster.State{ID: id}
	seen := map[string]bool{}
	for i := 0; i < len(fields); i += 2 {
		name, ok1 := fields[i].(string)
		value, ok2 := fields[i+1].(string)
		if !ok1 || !ok2 {
			return corrupt("state field %v", fields[i])
		}
		seen[name] = true
		var err error
		switch name {
		case "sent":
			st.Sent, err = strconv.ParseUint(value, 10, 64)
		case "acked":
			st.Acked, err = strconv.ParseUint(value, 10, 64)
		case "received":
			st.Received, err = strconv.ParseUint(value, 10, 64)
		case "info":
			st.Info = []byte(value)
		default:
			if topic, ok := strings.CutPrefix(name, "i:"); ok {
				if st.TopicInfo == nil {
					st.TopicInfo = make(map[string][]byte)
				}
				st.TopicInfo[topic] = []byte(value)
			}
			if topic, ok := strings.CutPrefix(name, "o:"); ok {
				if st.TopicOffsets == nil {
					st.TopicOffsets = make(map[string]uint64)
				}
				st.TopicOffsets[topic], err = strconv.ParseUint(value, 10, 64)
			}
		}
		if err != nil {
			return corrupt("%s %q", name, value)
		}
	}
	for _, name := range []string{"sent", "acked", "received", "info", "token"} {
		if !seen[name] {
			return corrupt("no %s", name)
		}
	}
	if st.Acked > st.Sent {
		return corrupt("acked %d of %d", st.Acked, st.Sent)
	}
	entries, ok := parts[2].([]any)
	if !ok || uint64(len(entries)) != st.Sent-st.Acked {
		return corrupt("%d messages stored, %d unacknowledged", len(entries), st.Sent-st.Acked)
	}
	st.Out = make([]wire.Message, 0, len(entries))
	for i, e := range entries {
		m, err := parseEntry(e, st.Acked+uint64(i)+1)
		if err != nil {
			return corrupt("%v", err)
		}
		st.Out = append(st.Out, m)
	}
	topics, ok := parts[3].([]any)
	if !ok {
		return corrupt("topics of %T", parts[3])
	}
	for _, t := range topics {
		s, ok := t.(string)
		if !ok {
			return corrupt("topic of %T", t)
		}
		st.Topics = append(st.Topics, s)
	}
	slices.Sort(st.Topics)
	return epoch, st, nil
}

// parseEntry decodes one stream entry {"<num>-0", {"t", type, "d", data}},
// which must be message num.
func parseEntry(e any, num uint64) (wire.Message, error) {
	pair, ok := e.([]any)
	if !ok || len(pair) != 2 {
		return wire.Message{}, fmt.Errorf("message %d: entry of %T", num, e)
	}
	entryID, _ := pair[0].(string)
	if n, seq, ok := strings.Cut(entryID, "-"); !ok || n != strconv.FormatUint(num, 10) || seq != "0" {
		return wire.Message{}, fmt.Errorf("message %d: entry %q", num, entryID)
	}
	fields, ok := pair[1].([]any)
	if !ok || len(fields) != 4 || fields[0] != "t" || fields[2] != "d" {
		return wire.Message{}, fmt.Errorf("message %d: fields %v", num, pair[1])
	}
	typ, _ := fields[1].(string)
	t, err := strconv.ParseUint(typ, 10, 8)
	if err != nil || (wire.MessageType(t) != wire.Text && wire.MessageType(t) != wire.Binary) {
		return wire.Message{}, fmt.Errorf("message %d: type %q", num, typ)
	}
	data, ok := fields[3].(string)
	if !ok {
		return wire.Message{}, fmt.Errorf("message %d: data of %T", num, fields[3])
	}
	return wire.Message{Type: wire.MessageType(t), Data: []byte(data)}, nil
}

// number reads a decimal count that Redis returned as a string or integer.
func number(v any) (uint64, error) {
	switch v := v.(type) {
	case string:
		return strconv.ParseUint(v, 10, 64)
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("negative %d", v)
		}
		return uint64(v), nil
	}
	return 0, fmt.Errorf("number of %T", v)
}
