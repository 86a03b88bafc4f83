// Package broker carries messages published to a topic to every session
// subscribed to it, and keeps who is subscribed (presence). A
// tether.Server's Subscribe, Unsubscribe, Publish and Presence go through a
// Broker: by default a Memory, which keeps everything in this process and
// needs nothing installed; a cluster of servers uses a Broker that spans
// them (over Redis or NATS), and the application's calls stay the same.
//
// # Delivery
//
// A Broker hands each published message to the Subscribers of the topic on
// its node, one Delivery shared by all of them: the message's bytes are
// held once, however many sessions it goes to, and its encoded frames are
// built once per framing (wire.Frames). Each subscriber queues the
// message in its session's own numbered outbound queue
// (session.Local.SendShared), so a client between two connections receives
// it when it re-attaches, like any message, and a session that cannot keep
// up meets its own slow-consumer policy without holding up the publisher or
// the other subscribers.
//
// # Topics
//
// A topic exists while it has subscribers; its name is checked by
// CheckTopic (ErrInvalidTopic). Subscribing twice, unsubscribing a session
// that is not subscribed, and publishing to a topic nobody is subscribed to
// are not errors: each changes nothing.
package broker
