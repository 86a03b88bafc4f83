// Package longpoll is Tether's long-polling transport: each GET waits for
// messages, answers with a batch of frames, and ends. The next poll's
// received parameter acknowledges the batch. Client messages travel through
// the shared upstream POST (transport.ServeSend).
package longpoll

import (
	"errors"
	"net/http"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// Name is the transport's name in negotiate responses and URLs.
const Name = transport.LongPoll

// Transport is the long-polling transport. The zero value is ready to use.
type Transport struct{}

// New returns a long-polling transport.
func New() *Transport { return &Transport{} }

// Name implements transport.Transport.
func (*Transport) Name() string { return Name }

// Bidirectional implements transport.Transport: polls carry only server
// messages.
func (*Transport) Bidirectional() bool { return false }

// ServeAttach implements transport.Transport. A poll answers as soon as
// there is something to send, with at most Config.MaxPollBytes of messages,
// written as they are taken from the queue, and with a heartbeat after the
// connection's heartbeat interval otherwise. A poll superseded by a newer
// one answers at once with an empty batch.
func (*Transport) ServeAttach(w http.ResponseWriter, r *http.Request, a *transport.Attach) {
	link, err := a.Session.Attach(session.AttachOptions{Transport: Name, Received: a.Received})
	if err != nil {
		httpx.AttachError(w, err)
		return
	}
	defer link.Detach()
	maxBytes := a.Config.MaxPollBytes
	if maxBytes <= 0 {
		maxBytes = a.Config.MaxBodyBytes
	}
	// The answer is taken from the queue and written writeBytes of
	// messages at a time, so that its first frames leave as soon as the
	// first piece is encoded: a poll cut short keeps what arrived, however
	// large its whole answer (PROTOCOL.md section 6).
	b, err := link.Pull(r.Context(), a.HeartbeatInterval(), min(maxBytes, writeBytes))
	httpx.AnswerWithin(w, a.Config.WriteTimeout) // after the wait
	switch {
	case errors.Is(err, session.ErrFinished):
		httpx.Error(w, http.StatusNotFound, httpx.MsgUnknownSession)
		return
	case errors.Is(err, session.ErrUnreachable):
		// The session moved to another process (it lost its lease): the
		// client polls again, and finds it there.
		httpx.Error(w, http.StatusServiceUnavailable, httpx.MsgTryAgain)
		return
	case err != nil && !errors.Is(err, session.ErrSuperseded):
		return // the client went away
	}
	compact := httpx.WantsCompact(r)
	appendMessage, appendFrame := wire.RawEncoding.AppendBatchMessage, wire.AppendBatchFrame
	contentType := "application/octet-stream"
	if compact {
		appendMessage, appendFrame = wire.RawEncoding.AppendCompactMessage, wire.AppendCompactFrame
		contentType += wire.CompactMediaParam
	}
	h := w.Header()
	httpx.SetNoStore(h)
	h.Set("Content-Type", contentType)
	var body []byte
	heartbeat := b.Empty() && err == nil
	for left := maxBytes; ; {
		body = body[:0]
		for i, m := range b.Messages {
			body = appendMessage(body, m, b.SharedFrames(i))
			left -= len(m.Data) + session.MessageOverhead
		}
		if b.Close != nil {
			body = appendFrame(body, wire.AppendClose(nil, *b.Close))
		} else if heartbeat {
			body = appendFrame(body, wire.AppendHeartbeat(nil))
		}
		// Each writeBytes goes out within WriteTimeout (the last, with
		// net/http's flush once this returns): a client that does not
		// read the answer holds it, its goroutine and its connection no
		// longer.
		for rest := body; len(rest) > 0; {
			n := min(len(rest), writeBytes)
			httpx.AnswerWithin(w, a.Config.WriteTimeout)
			if _, err := w.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
		if b.Close != nil || len(b.Messages) == 0 || left <= 0 {
			return
		}
		// More of what is queued, without waiting; a poll superseded or
		// ended meanwhile ends with what it carried.
		if b, err = link.Collect(min(left, writeBytes)); err != nil {
			return
		}
	}
}

// writeBytes is how much of an answer one write carries: WriteTimeout
// bounds each, as it bounds each batch of a stream.
const writeBytes = 64 << 10
