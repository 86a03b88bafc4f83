// Package natsbus is a cluster.Bus on NATS: the nodes of a Tether cluster
// share a NATS server (or a NATS cluster) through core subjects and NATS
// request/reply. No JetStream is needed.
//
// # What crosses NATS
//
// A Publish is one NATS message of the data as it is, on the subject
// "<Prefix>.pub.<subject>". A Request is one NATS request on
// "<Prefix>.req.<subject>" with the application's data as its payload and,
// when the requester's context has a deadline, a header
// "Tether-Timeout: <microseconds left>" (about 40 bytes); the reply is one
// message on the requester's inbox (nats.go's shared response
// subscription), with a header "Tether-Status: too-big" and no data when
// the handler's reply was over MaxPayload. When no subscription serves the
// subject, nats-server answers at once with its no-responders status,
// which Request returns as cluster.ErrNoResponders: the server must support
// headers (nats-server 2.2 or later).
//
// # Payload limit
//
// MaxPayload is the server's max_payload (nats.Conn.MaxPayload, 1 MiB by
// default) less 256 bytes kept for the headers, so 1,048,320 bytes with a
// default server: cluster.DefaultMaxPayload, the limit of a MemoryBus.
// Options.MaxPayload may lower it.
//
// # Receiving
//
// Each subscription is a NATS subscription of the Bus's nats.Conn: nats.go
// calls fn in order on a goroutine of the subscription's own. A
// subscription holds SubscriberQueue messages (or 64 MiB) while fn is
// busy; nats.go drops what comes on top (a slow consumer, reported to the
// connection's ErrorHandler) and Dropped counts it. A request that is not
// one (no reply subject, or a Tether-Timeout header that is not a number)
// is dropped, counted by Malformed and logged at Warn.
//
// # When NATS goes away
//
// While the connection is down, Publish, Request, Subscribe and Serve
// return errors wrapping cluster.ErrUnavailable (Publish does not let
// nats.go buffer messages for the reconnection). nats.go reconnects and
// subscribes again by itself, so subscriptions and handlers work again
// once the server is back; what was published meanwhile is lost. Until
// the subscriptions are back, a Request may get cluster.ErrNoResponders.
//
// # The connection
//
// The application makes the nats.Conn and closes it after the Bus: Close
// does not close it. nats.go gives up reconnecting after 60 attempts 2 s
// apart by default, which would leave a node cut off for good after a
// two-minute outage; a cluster node's connection should reconnect for as
// long as it runs:
//
//	nc, err := nats.Connect(url,
//		nats.MaxReconnects(-1),              // never give up
//		nats.ReconnectWait(500*time.Millisecond), // between attempts to one server
//		nats.RetryOnFailedConnect(true),     // if NATS is not up yet at start
//	)
//
// New logs a Warn when the connection gives up reconnecting at some point.
package natsbus
