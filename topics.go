package tether

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/tetherkit/tether/broker"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// Topics: the application subscribes sessions to topics and publishes to
// them through the Server, which keeps each session's subscriptions and
// hands the rest to its Broker (Options.Broker).

// subscriber is a session this server created, as its Broker delivers to
// it: published messages go into the session's own numbered queue.
type subscriber struct {
	// l is the session's Local, a handle of one pointer: held as a
	// value, so that a publish reaches the Session without loading the
	// Local first (one place less in memory per delivery).
	l session.Local

	// mu serializes the session's Subscribe and Unsubscribe calls and its
	// leaving every topic when it closes, broker calls included: a
	// session's subscriptions here and in the broker stay the same.
	mu      sync.Mutex
	topics  map[string]struct{} // guarded by mu
	watched bool                // guarded by mu; leaveAll is set to run when the session closes
	closed  bool                // guarded by mu; the session closed and has left every topic
	// resume holds, for a session taken over, the offsets it had reached
	// in its topics (session.Restored.TopicOffsets): its first
	// subscription to each continues from there.
	resume map[string]uint64 // guarded by mu
}

var (
	_ broker.GapCloser = (*subscriber)(nil)
	_ broker.Resumable = (*subscriber)(nil)
)

// ID implements broker.Subscriber.
func (s *subscriber) ID() string { return s.l.ID() }

// Deliver implements broker.Subscriber: the message goes into the
// session's queue without a copy and without a wait; a session that cannot
// take it applies its slow-consumer policy (session.Local.SendShared). A
// message numbered in its topic's history has its offset stored with it
// by a durable session (session.Local.SendSharedAt).
func (s *subscriber) Deliver(d *broker.Delivery) {
	if d.Offset != 0 {
		s.l.SendSharedAt(d.Message, d.Frames, session.TopicOffset{Topic: d.Topic, Offset: d.Offset})
		return
	}
	s.l.SendShared(d.Message, d.Frames)
}

// ResumeAfter implements broker.Resumable: a session taken over continues
// each topic from the offset it had reached, once. The broker calls it
// within Subscribe, which the server calls with mu held.
func (s *subscriber) ResumeAfter(topic string) (uint64, bool) {
	offset, ok := s.resume[topic]
	delete(s.resume, topic)
	return offset, ok
}

// Joined implements broker.Resumable: a durable session stores where its
// subscription starts, with the subscription.
func (s *subscriber) Joined(topic string, offset uint64) { s.l.SetTopicOffset(topic, offset) }

// CloseGap implements broker.GapCloser: a session that missed messages of a
// topic is closed with StatusResumeGap (4000), reason broker.GapReason,
// after the messages queued already.
func (s *subscriber) CloseGap(string) {
	s.l.Close(wire.StatusResumeGap, broker.GapReason)
}

// addSubscriber records a session this server created, so that the
// application may subscribe it; resume is Subscriber.resume.
func (srv *Server) addSubscriber(l *session.Local, resume map[string]uint64) {
	srv.subsMu.Lock()
	defer srv.subsMu.Unlock()
	srv.subs[l.ID()] = &subscriber{l: *l, resume: resume}
}

// removeSubscriber forgets a session that has finished. It is called with
// the session's lock held, and takes only the server's.
func (srv *Server) removeSubscriber(l *session.Local) {
	srv.subsMu.Lock()
	defer srv.subsMu.Unlock()
	if sub := srv.subs[l.ID()]; sub != nil && sub.l.Session == l.Session {
		delete(srv.subs, l.ID())
	}
}

// subscriberOf returns the subscriber of s, or nil when this server does
// not hold s (any more).
func (srv *Server) subscriberOf(s *session.Session) *subscriber {
	srv.subsMu.Lock()
	defer srv.subsMu.Unlock()
	sub := srv.subs[s.ID()]
	if sub == nil || sub.l.Session != s {
		return nil
	}
	return sub
}

// Subscribe makes s receive every message published to topic from now on,
// until Unsubscribe or until s closes (a session leaves every topic when it
// closes), and lists it in topic's presence with info, such as its user's
// name as the application's Authorize hook found it; the broker keeps a
// copy of info. The application decides who may subscribe to what: call
// Subscribe after its own checks, from the handler or from anywhere else.
//
// Subscribing a session that is subscribed already changes nothing (its
// info stays) and returns nil. Subscribe returns an error wrapping
// broker.ErrInvalidTopic for a topic name broker.CheckTopic refuses, the
// session's CloseError for a session that has closed,
// session.ErrUnknownSession for a session this server does not hold, and
// the broker's error (ctx's, when it ends); it has then changed nothing.
//
// A session of a durable cluster node (session.DurableStore) has its
// subscription stored too, info included, before Subscribe returns, so
// that the node that takes it over subscribes it again with the same info. If ctx ends first, Subscribe returns
// ctx's error but the subscription stands, and is stored as soon as the
// store can be reached.
func (srv *Server) Subscribe(ctx context.Context, s *session.Session, topic string, info []byte) error {
	return srv.subscribe(ctx, s, topic, info, true)
}

// subscribe is Subscribe; journal says whether to store the subscription
// (a session taken over has it stored already).
func (srv *Server) subscribe(ctx context.Context, s *session.Session, topic string, info []byte, journal bool) error {
	if err := broker.CheckTopic(topic); err != nil {
		return err
	}
	sub := srv.subscriberOf(s)
	if sub == nil {
		if err := s.Err(); err != nil {
			return err
		}
		return session.ErrUnknownSession
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed || s.Context().Err() != nil {
		return s.Err()
	}
	if _, ok := sub.topics[topic]; ok {
		return nil
	}
	if _, err := srv.broker.Subscribe(ctx, topic, sub, info); err != nil {
		return err
	}
	if sub.topics == nil {
		sub.topics = make(map[string]struct{})
	}
	sub.topics[topic] = struct{}{}
	if !sub.watched {
		sub.watched = true
		// The session's lock is not held when this runs: leaving
		// calls the broker, which may wait on the network.
		context.AfterFunc(s.Context(), func() { srv.leaveAll(sub) })
	}
	if journal {
		// The journal keeps info as it is: a copy of its own, as the
		// broker's.
		return sub.l.JournalSubscribe(ctx, topic, bytes.Clone(info))
	}
	return nil
}

// Unsubscribe ends s's subscription to topic: s receives nothing more
// published to it (what is queued already is still delivered) and leaves
// its presence. Unsubscribing a session that is not subscribed changes
// nothing and returns nil. It returns an error wrapping
// broker.ErrInvalidTopic for an invalid topic name, and the broker's error
// (ctx's, when it ends); it has then changed nothing. A durable cluster
// node's session has the change stored before Unsubscribe returns, as for
// Subscribe.
func (srv *Server) Unsubscribe(ctx context.Context, s *session.Session, topic string) error {
	if err := broker.CheckTopic(topic); err != nil {
		return err
	}
	sub := srv.subscriberOf(s)
	if sub == nil {
		return nil // a session this server does not hold has no subscription
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if _, ok := sub.topics[topic]; !ok {
		return nil
	}
	if _, err := srv.broker.Unsubscribe(ctx, topic, sub.ID()); err != nil {
		return err
	}
	delete(sub.topics, topic)
	return sub.l.JournalTopic(ctx, topic, false)
}

// Topics returns the topics s is subscribed to, in order.
func (srv *Server) Topics(s *session.Session) []string {
	sub := srv.subscriberOf(s)
	if sub == nil {
		return nil
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return slices.Sorted(maps.Keys(sub.topics))
}

// leaveAll unsubscribes a session that has closed from every topic, once.
// It runs in a goroutine of its own (context.AfterFunc).
func (srv *Server) leaveAll(sub *subscriber) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.closed = true
	for topic := range sub.topics {
		ctx, cancel := context.WithTimeout(context.Background(), srv.opts.WriteTimeout)
		if _, err := srv.broker.Unsubscribe(ctx, topic, sub.ID()); err != nil {
			srv.opts.Logger.Warn("tether: a closed session could not leave its topic", "session", sub.ID(), "topic", topic, "error", err)
		}
		cancel()
	}
	sub.topics = nil
}

// Publish sends m to every session subscribed to topic, on this server and,
// with a cluster's Broker, on every other, except the session named by
// opts.Exclude (its sender, say). It keeps its own copy of m.Data, made
// once for every subscriber: the caller may reuse m.Data.
//
// The message goes into each subscriber's own numbered queue, like a Send
// of its own: a client between two connections receives it when it
// re-attaches, in order with everything else. Publish waits for no
// subscriber. A subscriber whose client has not acknowledged
// Options.MaxQueuedBytes meets its own slow-consumer policy: under
// session.SlowConsumerClose it is closed with StatusSlowConsumer (4002),
// under session.SlowConsumerDrop the message is dropped for it alone; under
// session.SlowConsumerBlock, since waiting for it would hold up the
// publisher and every other subscriber, it is closed with 4002 as under
// SlowConsumerClose (Send still waits for room). The others receive the
// message all the same, and Publish returns nil.
//
// It returns an error wrapping broker.ErrInvalidTopic for an invalid topic
// name, wire.ErrMessageTooBig for a message over Options.MaxMessageBytes
// and wire.ErrInvalidMessage for one Send would refuse as invalid
// (nobody receives these), and the broker's error (ctx's, when it ends).
// Publishing to a topic without subscribers returns nil: the message goes
// nowhere.
func (srv *Server) Publish(ctx context.Context, topic string, m wire.Message, opts *broker.PublishOptions) error {
	if err := broker.CheckTopic(topic); err != nil {
		return err
	}
	if err := srv.sessionCfg.CheckMessage(m); err != nil {
		return err
	}
	m.Data = slices.Clone(m.Data)
	return srv.broker.Publish(ctx, topic, m, opts)
}

// Presence returns the sessions subscribed to topic, with the info each
// was subscribed with, in no particular order; with a cluster's Broker,
// those of every server. It returns an error wrapping
// broker.ErrInvalidTopic for an invalid topic name, and the broker's error
// (ctx's, when it ends).
func (srv *Server) Presence(ctx context.Context, topic string) ([]broker.Member, error) {
	if err := broker.CheckTopic(topic); err != nil {
		return nil, err
	}
	return srv.broker.Presence(ctx, topic)
}

// OnPresence arranges for fn to be called for every join and leave of every
// topic (Subscribe, Unsubscribe, a subscribed session that closes), in
// order, one call at a time, on a goroutine of the broker's that holds no
// lock of a session: fn may Send, Publish or Subscribe. It may be called
// once; later calls are ignored.
func (srv *Server) OnPresence(fn func(broker.PresenceEvent)) { srv.broker.OnPresence(fn) }
