package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// ServeSend handles POST {prefix}send: a batch of client frames for s
// (PROTOCOL.md section 5.2). The messages in it are numbered from the seq
// parameter and the session drops the ones it already has, so retries are
// harmless. It answers 204 once every message is accepted.
func ServeSend(w http.ResponseWriter, r *http.Request, s session.Endpoint, cfg *Config) {
	seq, received, ok := httpx.SendQuery(w, r)
	if !ok {
		return
	}
	body, problem, err := httpx.ReadBody(w, r, cfg.MaxBodyBytes, cfg.ReadTimeout)
	if err != nil {
		if problem != "" {
			cfg.Warn(problem, s, r, err)
		}
		return
	}
	httpx.AnswerWithin(w, cfg.WriteTimeout) // the body may have taken a while
	var (
		msgs     []wire.Message // the first sendChunk messages
		count    int            // the messages in the body
		counted  int            // what they count for in the session's queue
		acked    uint64
		hasAck   bool
		closing  *wire.CloseError
		tooLarge bool
	)
	// The whole body is checked before any message is accepted.
	err = wire.ParseBatch(body, cfg.MaxMessageBytes, func(f wire.Frame) error {
		if closing != nil {
			return fmt.Errorf("%w: frame after close", wire.ErrMalformed)
		}
		switch {
		case f.IsMessage():
			if count < sendChunk {
				msgs = append(msgs, f.Message)
			}
			count++
			counted += len(f.Message.Data) + session.MessageOverhead
		case f.Type == wire.FrameAck:
			acked, hasAck = max(acked, f.Received), true
		case f.Type == wire.FrameClose:
			// A copy: &f.Close would move every frame to the heap.
			c := f.Close
			closing = &c
		}
		return nil
	})
	if errors.Is(err, wire.ErrMessageTooBig) {
		tooLarge = true
	} else if err != nil {
		cfg.Warn("tether: malformed send", s, r, err)
		httpx.BadRequest(w, err.Error())
		return
	}
	if count > 0 && seq == 0 {
		httpx.BadRequest(w, "missing seq")
		return
	}
	if received > 0 {
		acked, hasAck = max(acked, received), true
	}
	if hasAck {
		if err := s.Acknowledge(acked); errors.Is(err, session.ErrUnreachable) {
			httpx.Error(w, http.StatusServiceUnavailable, httpx.MsgTryAgain)
			return
		} else if err != nil {
			cfg.Warn("tether: bad acknowledgement", s, r, err)
			s.Fault(wire.CloseError{Code: wire.StatusProtocolError, Reason: "bad acknowledgement"})
			httpx.BadRequest(w, err.Error())
			return
		}
	}
	if tooLarge {
		cfg.Warn("tether: message too big", s, r, wire.ErrMessageTooBig)
		// The messages before the oversized one are lost with the
		// session, which cannot go on without the one it must skip.
		s.Fault(wire.CloseError{Code: wire.StatusMessageTooBig, Reason: "message too big"})
		httpx.Error(w, http.StatusRequestEntityTooLarge, httpx.MsgMessageTooBig)
		return
	}
	if count > 0 {
		// Messages that alias a body holding more than they count for
		// get copies of their own: a queued message would keep it all.
		own := len(body) > counted
		// A session's sends take turns while they deliver (at most two
		// bodies held): a newer one supersedes this one, which then
		// answers 503 try again.
		ctx, done, err := httpx.TakeTurn(r.Context(), s.ID())
		if err == nil {
			err = deliverBody(ctx, s, seq, body, msgs, count, own, cfg.MaxMessageBytes)
			done()
		}
		httpx.AnswerWithin(w, cfg.WriteTimeout) // after waiting for room
		if err != nil {
			switch {
			case errors.Is(err, session.ErrSequenceGap):
				cfg.Warn("tether: sequence gap", s, r, err)
				httpx.Error(w, http.StatusConflict, httpx.MsgSequenceGap)
			case errors.Is(err, session.ErrUnreachable):
				// Its holder lost it (session.ErrLeaseLost, which also
				// carries a CloseError): the client tries again.
				httpx.Error(w, http.StatusServiceUnavailable, httpx.MsgTryAgain)
			case wire.CloseStatus(err) != -1:
				httpx.Error(w, http.StatusNotFound, httpx.MsgUnknownSession)
			default: // the client went away, a newer send superseded this one, or the session's holder is unreachable
				httpx.Error(w, http.StatusServiceUnavailable, httpx.MsgTryAgain)
			}
			return
		}
	}
	if closing != nil {
		s.CloseFromClient(*closing)
	}
	w.WriteHeader(http.StatusNoContent)
}

// sendChunk is how many messages of a send body are handed to the session
// at a time: a body of many small messages never costs more than this many
// Message values at once.
const sendChunk = 1024

// deliverBody hands the count messages of a checked send body to s,
// numbered from seq, sendChunk at a time. msgs holds the first ones,
// already parsed; the rest are parsed again, chunk by chunk. With own, each
// message that aliases body gets a copy of its data first.
func deliverBody(ctx context.Context, s session.Endpoint, seq uint64, body []byte, msgs []wire.Message, count int, own bool, maxMessage int) error {
	deliver := func(chunk []wire.Message) error {
		if own {
			ownData(chunk, body)
		}
		err := s.Deliver(ctx, seq, chunk)
		seq += uint64(len(chunk))
		return err
	}
	if err := deliver(msgs); err != nil || count == len(msgs) {
		return err
	}
	skip := len(msgs)
	chunk := msgs[:0] // the session keeps the messages, not the slice
	err := wire.ParseBatch(body, maxMessage, func(f wire.Frame) error {
		if !f.IsMessage() {
			return nil
		}
		if skip > 0 {
			skip--
			return nil
		}
		chunk = append(chunk, f.Message)
		if len(chunk) < sendChunk {
			return nil
		}
		err := deliver(chunk)
		chunk = chunk[:0]
		return err
	})
	if err == nil && len(chunk) > 0 {
		err = deliver(chunk)
	}
	return err
}

// ownData gives each message of msgs that aliases body a copy of its data
// (a message decoded from base64 has its own array already; a raw one's
// data runs to the end of body's).
func ownData(msgs []wire.Message, body []byte) {
	if cap(body) == 0 {
		return
	}
	end := &body[:cap(body)][cap(body)-1]
	for i, m := range msgs {
		switch {
		case len(m.Data) == 0:
			msgs[i].Data = nil
		case &m.Data[:cap(m.Data)][cap(m.Data)-1] == end:
			msgs[i].Data = append([]byte(nil), m.Data...)
		}
	}
}
