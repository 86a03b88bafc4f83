package session

import (
	"errors"
	"fmt"

	"github.com/tetherkit/tether/wire"
)

// Restored is the state a session continues from in a process that takes
// it over from another, which held it and is gone: what that process stored
// (in a shared store such as Redis) as the session went.
type Restored struct {
	// ID and Token are the session's, unchanged: the client goes on using
	// them.
	ID, Token string
	// Acked is how many messages the client has acknowledged.
	Acked uint64
	// Out holds the messages the client has not acknowledged, numbered
	// Acked+1, Acked+2...; the session keeps their Data as it is, so the
	// caller must not change it.
	Out []wire.Message
	// Received is how many client messages the session had accepted: the
	// client's next message is number Received+1, and earlier ones it sends
	// again are dropped as duplicates.
	Received uint64
	// Journal, if not nil, is where the session's changes are written from
	// now on, as for NewJournaled: Acked, Out and Received are taken as
	// stored there already.
	Journal Journal
	// Topics are the topics the session was subscribed to, as its Journal
	// stored them. Restore does nothing with them: the server that goes on
	// with the session subscribes it again (DurableStore).
	Topics []string
	// TopicInfo holds the presence info the session joined each of its
	// Topics with (Entry.SubscribeInfo), by topic; a topic joined without
	// any is not in it. The server subscribes the session again with it.
	TopicInfo map[string][]byte
	// TopicOffsets are how far the session had come in its numbered
	// topics (Entry.TopicOffsets), by topic: the server that subscribes
	// it again delivers each topic's messages after its offset first.
	// Restore does nothing with them either.
	TopicOffsets map[string]uint64
}

// ErrInvalidRestore is wrapped by the errors Restore returns for a
// Restored it cannot continue from.
var ErrInvalidRestore = errors.New("session: invalid restored state")

// Restore returns a session held by this process that continues where r
// says: the next message Send queues is number Acked+len(Out)+1, a
// connection that attaches with a received count from Acked to
// Acked+len(Out) is replayed the rest of Out, and the client's messages
// are numbered on from Received. The resume window (never the shorter
// first-attach window: the client has attached before) starts at once, and
// onFinish is as for New. The session's TakenOver reports true.
//
// It returns an error wrapping ErrInvalidRestore for an empty ID or Token,
// or a message of Out that Send would refuse (Config.CheckMessage: a type
// other than Text and Binary, invalid UTF-8 in Text, over MaxMessageBytes):
// the caller then closes the session rather than deliver what the client
// cannot be sent.
func Restore(cfg *Config, info RequestInfo, r Restored, onFinish func(*Local)) (*Local, error) {
	cfg = cfg.withDefaults()
	if r.ID == "" || r.Token == "" {
		return nil, fmt.Errorf("%w: empty id or token", ErrInvalidRestore)
	}
	for i, m := range r.Out {
		if err := cfg.CheckMessage(m); err != nil {
			return nil, fmt.Errorf("%w: message %d: %w", ErrInvalidRestore, r.Acked+uint64(i)+1, err)
		}
	}
	return newLocal(cfg, r.ID, r.Token, info, onFinish, func(s *Session) {
		s.acked = r.Acked
		s.clientAcked = r.Acked
		for _, m := range r.Out {
			s.appendLocked(m, nil)
		}
		// The client was promised them: counted, never refused.
		cfg.QueueBudget.add(s.outBytes)
		s.handedOut = r.Acked + uint64(len(r.Out)) // the previous holder may have sent them all
		s.received = r.Received
		s.takenOver = true
		// Its client has attached before, to the process that held it:
		// the resume window applies, not the first-attach one.
		s.attachedOnce = true
		if r.Journal != nil {
			s.setJournal(r.Journal)
		}
	}), nil
}
