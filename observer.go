package tether

import "github.com/tetherkit/tether/session"

// Observer is told what the servers it is given to, and their sessions, do:
// it is how a server's metrics are collected. Package metrics implements it
// with Prometheus; an application that wants other metrics implements it
// itself. Set it in Options.Observer; several servers may share one.
type Observer interface {
	// ServerObserver is called once by NewServer with the transports the
	// server offers, in order (so that a fallback, a move down the order,
	// can be told from an upgrade, a move up). The server tells what it returns what it and its
	// sessions do.
	ServerObserver(offered []string) ServerObserver
}

// ServerObserver is told what one server and its sessions do. The
// session.Observer methods are called as that interface says (with a
// session's lock held: quick, never blocking); Negotiated is called on the
// goroutine serving the request.
type ServerObserver interface {
	session.Observer
	// Negotiated is called once for every negotiate request that passed
	// the checks of its method, version and origin, with its outcome.
	Negotiated(result NegotiateResult)
}

// QueueObserver is implemented by a ServerObserver that reads what its
// server's queues hold (package metrics' tether_queued_bytes): NewServer
// calls WatchQueuedBytes once, unless Options.MaxQueuedBytesTotal is
// negative, with the server's QueuedBytes, which the observer may call at
// any time, from any goroutine, for as long as it keeps it.
type QueueObserver interface {
	WatchQueuedBytes(queued func() int64)
}

// NegotiateResult is the outcome of a negotiate request, as a
// ServerObserver is told it.
type NegotiateResult string

// The outcomes of a negotiate request.
const (
	NegotiateOK               NegotiateResult = "ok"                  // a session was created
	NegotiateRefused          NegotiateResult = "refused"             // the Authorize hook refused it
	NegotiateTooManySessions  NegotiateResult = "too_many_sessions"   // MaxSessions was reached (503)
	NegotiateShuttingDown     NegotiateResult = "shutting_down"       // the server is shutting down (503)
	NegotiateTooManyForClient NegotiateResult = "too_many_for_client" // MaxSessionsPerClient was reached (503)
	NegotiateUnavailable      NegotiateResult = "unavailable"         // a durable cluster could not store the session (503)
)
