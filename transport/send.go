package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// ServeSend handles POST {prefix}send: a batch of client frames for s
// (PROTOCOL.md section 5.2). The messages in it are numbered from the seq
// parameter and the session drops the ones it already has, so retries are
// harmless. It answers 204 once every message is accepted.
func ServeSend(w http.ResponseWriter, r *http.Request, s session.Endpoint, cfg *Config) {
	if r.Method != http.MethodPost {
		Error(w, http.StatusMethodNotAllowed, MsgMethodNotAllowed)
		return
	}
	seq, bad := ParseRawCount(r.URL.RawQuery, "seq", 0)
	if bad != "" {
		BadRequest(w, bad)
		return
	}
	received, bad := ParseRawCount(r.URL.RawQuery, "received", 0)
	if bad != "" {
		BadRequest(w, bad)
		return
	}
	body, ok := ReadBody(w, r, cfg, s)
	if !ok {
		return
	}
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
	err := wire.ParseBatch(body, cfg.MaxMessageBytes, func(f wire.Frame) error {
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
		BadRequest(w, err.Error())
		return
	}
	if count > 0 && seq == 0 {
		BadRequest(w, "missing seq")
		return
	}
	if received > 0 {
		acked, hasAck = max(acked, received), true
	}
	if hasAck {
		if err := s.Acknowledge(acked); err != nil {
			cfg.Warn("tether: bad acknowledgement", s, r, err)
			s.Fault(wire.CloseError{Code: wire.StatusProtocolError, Reason: "bad acknowledgement"})
			BadRequest(w, err.Error())
			return
		}
	}
	if tooLarge {
		cfg.Warn("tether: message too big", s, r, wire.ErrMessageTooBig)
		// The messages before the oversized one are lost with the
		// session, which cannot go on without the one it must skip.
		s.Fault(wire.CloseError{Code: wire.StatusMessageTooBig, Reason: "message too big"})
		Error(w, http.StatusRequestEntityTooLarge, MsgMessageTooBig)
		return
	}
	if count > 0 {
		// Messages that alias a body holding more than they count for
		// get copies of their own: a queued message would keep it all.
		own := len(body) > counted
		if err := deliverBody(r.Context(), s, seq, body, msgs, count, own, cfg.MaxMessageBytes); err != nil {
			switch {
			case errors.Is(err, session.ErrSequenceGap):
				cfg.Warn("tether: sequence gap", s, r, err)
				Error(w, http.StatusConflict, MsgSequenceGap)
			case wire.CloseStatus(err) != -1:
				Error(w, http.StatusNotFound, MsgUnknownSession)
			default: // the request's context ended: the client went away
				Error(w, http.StatusServiceUnavailable, "try again")
			}
			return
		}
	}
	if closing != nil {
		s.CloseFromClient(*closing)
	}
	w.WriteHeader(http.StatusNoContent)
}

// ReadBody reads the body of a send or negotiate request: at most
// cfg.MaxBodyBytes of it, within cfg.ReadTimeout, so that a body sent a byte
// at a time holds its own request only, and only that long. Memory follows
// the bytes that arrive, not the length the request announces. When the
// body cannot be read, ReadBody answers (413 body too big; 408 request
// timeout, closing the connection; 400 for a body cut short), logs at Warn
// (naming s, which may be nil), and returns false.
func ReadBody(w http.ResponseWriter, r *http.Request, cfg *Config, s session.Endpoint) ([]byte, bool) {
	rc := http.NewResponseController(w)
	if cfg.ReadTimeout > 0 {
		// The connection cannot be reused after a timeout.
		rc.SetReadDeadline(time.Now().Add(cfg.ReadTimeout))
	}
	body, err := readBody(w, r, cfg.MaxBodyBytes)
	if err == nil {
		if cfg.ReadTimeout > 0 {
			// The body is in; the request may now wait (for room in the
			// session's queue) as long as its client does: net/http
			// reads on to see the client go.
			rc.SetReadDeadline(time.Time{})
		}
		return body, true
	}
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		cfg.warnBody("tether: body too big", s, r, err)
		Error(w, http.StatusRequestEntityTooLarge, MsgBodyTooBig)
	case errors.As(err, &ne) && ne.Timeout():
		cfg.warnBody("tether: body too slow", s, r, err)
		w.Header().Set("Connection", "close")
		Error(w, http.StatusRequestTimeout, MsgRequestTimeout)
	default:
		BadRequest(w, "reading body: "+err.Error())
	}
	return nil, false
}

// firstBodyBuffer is the buffer a body is first read into; it doubles as
// it fills, up to the announced length.
const firstBodyBuffer = 512

// readBody reads r's body, at most limit bytes of it. A body that announces
// its length is read into a buffer that grows as bytes arrive, up to that
// length: a client that announces a large body and sends little of it
// holds little memory.
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, int64(limit))
	if r.ContentLength < 0 || r.ContentLength > int64(limit) {
		return io.ReadAll(body)
	}
	n := int(r.ContentLength)
	p := make([]byte, 0, min(n, firstBodyBuffer))
	for len(p) < n {
		if len(p) == cap(p) {
			p = slices.Grow(p, min(len(p), n-len(p)))
		}
		m, err := body.Read(p[len(p):cap(p)])
		p = p[:len(p)+m]
		if err == io.EOF {
			if len(p) < n {
				return nil, io.ErrUnexpectedEOF
			}
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
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
