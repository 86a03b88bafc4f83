package wire

import (
	"strconv"
)

// MessageType says how a message's bytes are to be read.
type MessageType uint8

const (
	// Text messages hold valid UTF-8.
	Text MessageType = iota + 1
	// Binary messages hold any bytes.
	Binary
)

// String returns "text", "binary" or a number for an invalid type.
func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Message is one application message, in either direction.
type Message struct {
	Type MessageType
	Data []byte
}
