package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// echoService serves the echo service at /rt/ through its Message
// callback: it echoes every message, and runs the text commands
//
//	stream N       the messages "1" .. "N"
//	subscribe T    subscribes the session to topic T, then says "subscribed T"
//	publish T X    publishes the text X to topic T, to every node's subscribers
//
// A command that fails ends the session with StatusInternalError and the
// failure as reason, so that a test sees it. It answers each message in the
// call that delivers it, so that a durable node stores the answer with the
// message's receipt: a node killed between the two loses neither.
type echoService struct{ srv *tether.Server }

// message is the service's tether.Callbacks.Message.
func (e *echoService) message(s *session.Session, m wire.Message) {
	if err := e.run(s.Context(), s, m); err != nil && s.Context().Err() == nil {
		s.Close(wire.StatusInternalError, err.Error())
	}
}

// run answers one message.
func (e *echoService) run(ctx context.Context, s *session.Session, m wire.Message) error {
	if m.Type != wire.Text {
		return s.Send(ctx, m)
	}
	cmd, arg, _ := strings.Cut(string(m.Data), " ")
	switch cmd {
	case "stream":
		if n, err := strconv.Atoi(arg); err == nil && n > 0 {
			for i := 1; i <= n; i++ {
				if err := s.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(strconv.Itoa(i))}); err != nil {
					return err
				}
			}
			return nil
		}
	case "subscribe":
		if err := e.srv.Subscribe(ctx, s, arg, nil); err != nil {
			return err
		}
		return s.Send(ctx, wire.Message{Type: wire.Text, Data: []byte("subscribed " + arg)})
	case "publish":
		topic, text, _ := strings.Cut(arg, " ")
		return e.srv.Publish(ctx, topic, wire.Message{Type: wire.Text, Data: []byte(text)}, nil)
	}
	return s.Send(ctx, m)
}
