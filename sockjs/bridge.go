package sockjs

import (
	"encoding/base64"
	"errors"
	"sync"
	"time"

	sockjsgo "github.com/igm/sockjs-go/v3/sockjs"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// pullInterval is how long Pull waits with nothing to send; sockjs-go
// sends the heartbeats, so the empty batch it then returns is ignored.
const pullInterval = time.Minute

// pullBytes bounds the message data of one Pull; messages go to sockjs-go
// one by one in any case.
const pullBytes = 64 << 10

// serve runs for the whole of one SockJS session: it makes the Tether
// session, attaches a link, pumps both directions, and ends the Tether
// session when the SockJS one ends (or the other way round).
func (h *handler) serve(ss sockjsgo.Session) {
	s, err := h.srv.NewSession(wholeRequest(ss.Request()))
	if err != nil {
		ce := refusal(err)
		ss.Close(uint32(ce.Code), ce.Reason)
		return
	}
	link, err := s.Attach(session.AttachOptions{Transport: Name})
	if err != nil { // the server closed it at once
		ss.Close(uint32(wire.StatusGoingAway), "session ended")
		return
	}
	var t *tracker
	if ss.ReceiverType() != sockjsgo.ReceiverTypeWebsocket {
		t = &tracker{s: s}
		h.addTracker(ss.ID(), t)
		defer h.removeTracker(ss.ID(), t)
	}

	var wg sync.WaitGroup
	wg.Go(func() { upstream(ss, s) })
	closed := downstream(ss, s, link, t)
	// The SockJS session is over, or closing with the server's close
	// frame: either way the Tether session cannot go on.
	if !closed {
		// The SockJS session has ended (Close then does nothing), or the
		// Tether session ended without a close frame for the link.
		ce := wire.CloseError{Code: wire.StatusInternalError, Reason: "session ended"}
		errors.As(s.Err(), &ce)
		ss.Close(uint32(ce.Code), ce.Reason)
	}
	// The SockJS session is closing, so upstream ends; what it read before
	// is delivered before the session ends.
	wg.Wait()
	ce := wire.CloseError{Code: wire.StatusAbnormalClosure, Reason: "sockjs session closed"}
	if messageTooBig(ss.Request()) {
		ce = wire.CloseError{Code: wire.StatusMessageTooBig, Reason: "message too big"}
	}
	s.CloseFromClient(ce)
	link.Detach()
}

// downstream writes what the session sends to the SockJS client until the
// session's close frame (closed is then true) or the end of the SockJS
// session.
func downstream(ss sockjsgo.Session, s session.Endpoint, link session.Link, t *tracker) (closed bool) {
	ctx := ss.Context() // canceled when the SockJS session closes
	for {
		b, err := link.Pull(ctx, pullInterval, pullBytes)
		if err != nil {
			return false
		}
		for _, m := range b.Messages {
			data := string(m.Data)
			if m.Type == wire.Binary {
				data = base64.StdEncoding.EncodeToString(m.Data)
			}
			if ss.Send(data) != nil {
				return false
			}
		}
		if n := len(b.Messages); n > 0 {
			if t != nil {
				t.addSent(n)
			} else {
				// A WebSocket write has returned: delivered, as far as
				// anyone can tell without acknowledgements.
				s.Acknowledge(b.First + uint64(n) - 1)
			}
		}
		if b.Close != nil {
			if t != nil {
				t.waitWritten(ctx)
			}
			ss.Close(uint32(b.Close.Code), wire.TruncateReason(b.Close.Reason))
			return true
		}
	}
}

// upstream delivers the client's messages to the session, numbered from 1,
// until the SockJS session closes or the session refuses one (then it
// closes, and downstream sends the close frame).
func upstream(ss sockjsgo.Session, s session.Endpoint) {
	ctx := ss.Context()
	for seq := uint64(1); ; seq++ {
		msg, err := ss.RecvCtx(ctx)
		if err != nil {
			return
		}
		// encoding/json has made msg valid UTF-8.
		if s.Deliver(ctx, seq, []wire.Message{{Type: wire.Text, Data: []byte(msg)}}) != nil {
			return
		}
	}
}

// refusal is the close frame a SockJS client gets when the server refuses
// it a session (a negotiate request would get an HTTP status instead).
func refusal(err error) wire.CloseError {
	var ae *tether.AuthError
	switch {
	case errors.Is(err, tether.ErrShuttingDown):
		return wire.CloseError{Code: wire.StatusGoingAway, Reason: "server shutting down"}
	case errors.Is(err, session.ErrTooManySessions):
		return wire.CloseError{Code: wire.StatusTryAgainLater, Reason: httpx.MsgTooManySessions}
	case errors.Is(err, tether.ErrOriginNotAllowed):
		return wire.CloseError{Code: wire.StatusPolicyViolation, Reason: httpx.MsgOriginNotAllowed}
	case errors.As(err, &ae):
		return wire.CloseError{Code: wire.StatusPolicyViolation, Reason: wire.TruncateReason(ae.Message)}
	}
	return wire.CloseError{Code: wire.StatusPolicyViolation, Reason: wire.TruncateReason(err.Error())}
}
