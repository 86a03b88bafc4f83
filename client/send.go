package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/wire"
)

// closeFrameRoom is the most a close frame takes in a batch: length
// prefix, type, code, space and the longest reason.
const closeFrameRoom = 3 + 1 + 1 + 4 + 1 + wire.MaxReasonBytes

// sendPieceBytes bounds the body of one send request below maxBodyBytes:
// a request's answer comes only once its whole body is read and taken, so a
// connection that lives a short while, over a slow path, still carries
// whole requests, and each answered one counts (PROTOCOL.md section 5.2).
const sendPieceBytes = 64 << 10

// maxBadRequests is how many times in a row a send answered 400 is retried
// before the session ends with a protocol error.
const maxBadRequests = 3

// sendLoop carries client messages over POST {prefix}send, for every
// transport whose connection is one-way (PROTOCOL.md section 5.2). It is the
// connection's only sender: each request carries, from the oldest
// unacknowledged message, whatever is queued, bounded by sendPieceBytes and
// maxBodyBytes, and is retried until answered 204; the server drops the
// duplicates of a retry.
// Its first request carries whatever is queued, even nothing, to prove the
// connection at once. The close frame from Close goes after the last message.
func sendLoop(ctx context.Context, l *link) error {
	s := l.s
	limit := min(s.negotiated().MaxBodyBytes, sendPieceBytes)
	if l := int(s.sendLimit.Load()); l > 0 {
		limit = min(limit, l)
	}
	timeout := 2 * s.negotiated().heartbeat()
	probe := true
	early := l.early // the first request (see link.early)
	bad := 0
	u := l.requestURL("send")
	d := newRequestDeadline(ctx, timeout)
	defer d.close()
	for {
		seq := s.out.next()
		w, err := s.out.view(seq, max(limit-closeFrameRoom, 1))
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		closing := w.closeReq != nil && !w.rest
		if len(w.msgs) == 0 && !closing && !probe {
			select {
			case <-w.changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var body []byte // fresh: the HTTP client may read it after Do returns
		for _, m := range w.msgs {
			body = wire.RawEncoding.AppendBatchMessage(body, m, nil)
		}
		if closing {
			body = wire.AppendBatchFrame(body, wire.AppendClose(nil, *w.closeReq))
		}
		rp, err := s.do(d, http.MethodPost, u.with(s.acknowledgeable(), int64(seq), false), body)
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if rp.status != http.StatusNotFound {
			early = false
		}
		resp := rp.body
		switch status := rp.status; status {
		case http.StatusNoContent:
			probe, bad = false, 0
			l.established()
			if len(w.msgs) > 0 {
				if err := s.out.ack(seq + uint64(len(w.msgs)) - 1); err != nil {
					return fmt.Errorf("send: %w", err)
				}
			}
			if closing {
				return &endError{ce: *w.closeReq, local: true}
			}
		case http.StatusNotFound:
			return goneError(early)
		case http.StatusConflict:
			return errSequenceGap
		case http.StatusRequestEntityTooLarge:
			msg := errorMessage(status, rp.contentType, resp)
			if msg == httpx.MsgMessageTooBig || len(w.msgs) <= 1 {
				// A message no send request carries: the server's limit,
				// or a proxy's, whose page is no reason.
				s.attemptFailed("send", s.Transport(), &statusError{status, msg})
				return endSession(wire.StatusMessageTooBig, httpx.MsgMessageTooBig)
			}
			// Retry with less, and keep to less for the rest of the
			// session: the proxy stays in front on the next connection.
			limit = len(body) / 2
			s.sendLimit.Store(int64(limit))
		case http.StatusBadRequest:
			if len(body) == 0 {
				probe = false // a server that wants no empty batch; the poll proves the connection
				continue
			}
			if bad++; bad > maxBadRequests {
				return endSession(wire.StatusProtocolError, wire.TruncateReason("send refused: "+errorMessage(status, rp.contentType, resp)))
			}
			// A proxy may have cut the body; retry after a pause.
			t := time.NewTimer(time.Duration(bad) * 100 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		default:
			// A 200 page, a proxy's 502: the connection is given up and
			// attached again, and the messages go again on it
			// (runBesideSends reports it).
			return fmt.Errorf("send: %w", &statusError{status, errorMessage(status, rp.contentType, resp)})
		}
	}
}

// unknownGrace is how long a connection whose send request was answered
// 404 may still bring the server's close frame before the session ends
// with StatusSessionUnknown.
const unknownGrace = 2 * time.Second

// runBesideSends runs a one-way transport's downstream loop on l beside the
// send loop on sl, and returns how the connection ended. When the send loop
// learns that the server ended the session, the downstream still carries
// what the server sent before, then its close frame if it sent one: it
// decides, and ends by itself (attaching to an ended session answers 404).
// When Close has queued the close frame, the send loop that carries it
// decides.
//
// A send answered with a status it does not expect ends the connection; it
// is reported to Options.OnError as a send of transport name once the
// connection was established, and otherwise by the attempt that fails, as
// its attach.
func runBesideSends(ctx context.Context, name string, l, sl *link, down func(context.Context, *link) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	downErr := make(chan error, 1)
	sendErr := make(chan error, 1)
	go func() { downErr <- down(ctx, l) }()
	go func() { sendErr <- sendLoop(ctx, sl) }()
	select {
	case err := <-sendErr:
		if errors.Is(err, errSessionGone) || errors.Is(err, errSequenceGap) {
			// A server that ended the session sends its close frame at
			// once; a downstream still healthy after unknownGrace is on a
			// server that does not hold the session (a balancer over
			// servers that share none): the send's answer decides.
			t := time.NewTimer(unknownGrace)
			defer t.Stop()
			var end error
			select {
			case derr := <-downErr:
				end = firstEnd(derr, err)
			case <-t.C:
				cancel()
				end = firstEnd(<-downErr, err)
			}
			// The session ends unknown to the server (not by a close
			// frame the downstream brought): the send answered 404 is
			// the failed request to report.
			if !l.s.out.closing() {
				l.s.reportGone("send", name, end)
			}
			return end
		}
		cancel()
		// Once the downstream has ended, whether the connection was
		// established is settled, as attempt will find it.
		derr := <-downErr
		if se := (*statusError)(nil); errors.As(err, &se) && l.isEstablished() {
			l.s.attemptFailed("send", name, err)
		}
		return firstEnd(err, derr)
	case err := <-downErr:
		// A poll or the next stream response answered 404 (while
		// closing, that is the server done with the session).
		if !l.s.out.closing() {
			l.s.reportGone("attach", name, err)
		}
		if l.s.out.closing() && ctx.Err() == nil {
			serr := <-sendErr
			cancel()
			return firstEnd(serr, err)
		}
		cancel()
		return firstEnd(err, <-sendErr)
	}
}
