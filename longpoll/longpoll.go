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
// and with a heartbeat after the connection's heartbeat interval otherwise. A poll superseded by a newer one answers at once with
// an empty batch.
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
	b, err := link.Pull(r.Context(), a.HeartbeatInterval(), maxBytes)
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
	size := 16
	for _, m := range b.Messages {
		size += len(m.Data) + 8 // length prefix and type byte, at most
	}
	body := make([]byte, 0, size)
	for i, m := range b.Messages {
		body = appendMessage(body, m, b.SharedFrames(i))
	}
	var frame []byte
	if b.Close != nil {
		frame = wire.AppendClose(frame, *b.Close)
		body = appendFrame(body, frame)
	} else if b.Empty() && err == nil {
		body = appendFrame(body, wire.AppendHeartbeat(frame))
	}
	h := w.Header()
	httpx.SetNoStore(h)
	h.Set("Content-Type", contentType)
	// Each writeBytes of the answer goes out within WriteTimeout (the last,
	// with net/http's flush once this returns): a client that does not read
	// it holds the answer, its goroutine and its connection no longer.
	for len(body) > 0 {
		n := min(len(body), writeBytes)
		httpx.AnswerWithin(w, a.Config.WriteTimeout)
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		body = body[n:]
	}
}

// writeBytes is how much of an answer one write carries: WriteTimeout
// bounds each, as it bounds each batch of a stream.
const writeBytes = 64 << 10
