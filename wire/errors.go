package wire

import "errors"

// The errors both sides return for the same mistake: the server's
// session.Session and the Go client's client.Session, and the codec below
// them, return these values (wrapped with %w), so that errors.Is works
// whichever side an error came from.
var (
	// ErrMessageTooBig is returned by the server's Session.Send and the Go
	// client's Session.Send for a message over the negotiated
	// maxMessageBytes (the message is not sent and the session goes on),
	// by the server's Endpoint.Deliver for a client message over that
	// limit, and by the parsers (ParseFrame, ParseBatch,
	// ParseCompactBatch) for a message larger than the limit they were
	// given.
	ErrMessageTooBig = errors.New("message too big")
	// ErrInvalidMessage is returned by Session.Send, on either side, for a
	// message whose Type is neither Text nor Binary, or a Text message
	// that is not valid UTF-8.
	ErrInvalidMessage = errors.New("invalid message")
	// ErrInvalidCloseCode is returned by Session.Close, on either side,
	// for a code that may not travel in a close frame (StatusCode.Valid).
	ErrInvalidCloseCode = errors.New("invalid close code")
	// ErrMalformed is wrapped by every error the parsers return for bytes
	// that are not a valid frame or batch.
	ErrMalformed = errors.New("malformed frame")
)
