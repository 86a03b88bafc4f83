package redisstate

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// State is a session's recoverable state, as TakeOver and Load return it.
type State struct {
	// ID is the session's id.
	ID string
	// Sent is how many messages the session has numbered for the client.
	Sent uint64
	// Acked is how many of them the client has acknowledged.
	Acked uint64
	// Received is how many client messages the session has accepted: the
	// next client message is number Received+1.
	Received uint64
	// Out holds the unacknowledged messages, numbers Acked+1 to Sent in
	// order.
	Out []wire.Message
	// Topics holds the session's topics, sorted.
	Topics []string
	// Info is the application's negotiate data, as given to Create.
	Info []byte
}

// Batch is what changed in a session since its last Write.
type Batch struct {
	// First is the number of Messages[0]; ignored when Messages is empty.
	// Messages numbered at or below the stored count are skipped, so a batch
	// may be written again after an error; a First beyond the stored count
	// + 1 gives ErrOutOfOrder.
	First uint64
	// Messages are new messages for the client, numbered First, First+1...
	Messages []wire.Message
	// Acked, if above the stored count, is the client's new acknowledged
	// count: the messages up to it are dropped from Redis. It may not exceed
	// the sent count (ErrOutOfOrder). 0 leaves it as it is.
	Acked uint64
	// Received, if above the stored count, is the new count of client
	// messages accepted. 0 leaves it as it is.
	Received uint64
	// Subscribe and Unsubscribe are topics joined and left, in this order.
	Subscribe, Unsubscribe []string
}

// Write applies b to the session's state in one round trip, if l's epoch is
// still the session's, and extends the lease by LeaseTTL and the state by
// ResumeWindow. It returns ErrFenced (the session was taken over: stop
// serving it), ErrOutOfOrder, ErrInvalidBatch, ErrNotFound, ErrVersion,
// ErrCorrupt, ErrInvalidID, or an error wrapping ErrUnavailable (the
// batch may or may not be stored: write it again). Nothing is written when
// it returns an error other than the last.
func (s *Store) Write(ctx context.Context, l Lease, b *Batch) error {
	if len(b.Messages) > 0 && b.First == 0 {
		return fmt.Errorf("%w: message numbers start at 1", ErrInvalidBatch)
	}
	for i, m := range b.Messages {
		if m.Type != wire.Text && m.Type != wire.Binary {
			return fmt.Errorf("%w: message %d of type %d", ErrInvalidBatch, b.First+uint64(i), m.Type)
		}
	}
	args := make([]any, 0, 8+3*len(b.Messages)+len(b.Subscribe)+len(b.Unsubscribe))
	args = append(args, l.value(), s.lease, s.window, strconv.Itoa(len(b.Messages)))
	for i, m := range b.Messages {
		args = append(args, strconv.FormatUint(b.First+uint64(i), 10), strconv.Itoa(int(m.Type)), m.Data)
	}
	args = append(args, count(b.Acked), count(b.Received), strconv.Itoa(len(b.Subscribe)))
	for _, t := range b.Subscribe {
		args = append(args, t)
	}
	args = append(args, strconv.Itoa(len(b.Unsubscribe)))
	for _, t := range b.Unsubscribe {
		args = append(args, t)
	}
	return s.fenced(ctx, writeScript, l, args...)
}

// count is n as a script takes it: "" for 0, which leaves the count.
func count(n uint64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(n, 10)
}

// parseState decodes the reply of takeOverScript and loadScript:
// {epoch, state hash as flat pairs, out entries, topics}. Anything
// unexpected is ErrCorrupt.
func parseState(id string, reply any) (uint64, *State, error) {
	corrupt := func(format string, a ...any) (uint64, *State, error) {
		return 0, nil, fmt.Errorf("%w: session %s: %s", ErrCorrupt, id, fmt.Sprintf(format, a...))
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
	st := &State{ID: id}
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

// Restored returns what session.Restore continues from: the state, with the
// token of the request that took the session over (TakeOver checked it; the
// store keeps only its hash).
func (st *State) Restored(token string) session.Restored {
	return session.Restored{ID: st.ID, Token: token, Acked: st.Acked, Out: st.Out, Received: st.Received}
}
