package session

import "github.com/tetherkit/tether/wire"

// MessageOverhead is what each message a session holds counts for besides
// its data: in Config.MaxQueuedBytes, in both directions, and in the byte
// limit of each Batch a link hands out. It covers what the session itself
// keeps per message (its place in a queue, the rounding of its data's
// allocation), so that a flood of empty messages fills the queue as
// surely as large ones do, and the limit bounds real memory.
const MessageOverhead = 64

// queuedSize is what m counts for in queues and batch limits.
func queuedSize(m wire.Message) int { return len(m.Data) + MessageOverhead }
