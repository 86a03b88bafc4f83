package session

// Local is a session held by this process: its application side (the
// embedded Session, which is all a Handler is given) and what only the
// server and the transports call: Token and the Endpoint methods
// that attach connections and deliver the client's messages. New returns
// it and a Store keeps it; the server hands transports its Endpoint and the
// application its Session, never the Local itself.
//
// All methods may be called concurrently.
type Local struct {
	*Session
}

var _ Endpoint = (*Local)(nil)
