package client

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// longpollTransport attaches long-poll connections: a loop of GET
// {prefix}longpoll requests, each answered with a batch of frames, for the
// server-to-client direction, and the shared send loop for the other.
type longpollTransport struct{}

func (longpollTransport) name() string { return transport.LongPoll }

// errPollStopped stops the poll loop once Close was called: from then on
// only the send loop, which carries the close frame, decides the outcome.
var errPollStopped = errors.New("longpoll: stopped for close")

// run polls and sends side by side; the connection is established by the
// first answered poll or send, whichever comes first.
func (longpollTransport) run(ctx context.Context, l *link) error {
	return runBesideSends(ctx, transport.LongPoll, l, l, pollLoop)
}

// pollLoop polls until the connection fails or the session ends. Each poll
// carries the count of messages received, which acknowledges them; the
// first answer proves the connection.
func pollLoop(ctx context.Context, l *link) error {
	s := l.s
	// The server answers within one heartbeat interval; two is a dead
	// connection (PROTOCOL.md section 5.3).
	timeout := 2 * l.hb
	u := l.requestURL(transport.LongPoll)
	d := newRequestDeadline(ctx, timeout)
	defer d.close()
	for early := l.early; ; early = false {
		if s.out.closing() {
			return errPollStopped
		}
		if err := s.gate.wait(ctx, l); err != nil {
			return err
		}
		received := s.received.Load()
		l.n = received
		l.touch(time.Now())
		if err := poll(ctx, d, l, u.with(received, -1, true), early); err != nil {
			return err
		}
	}
}

// poll makes one poll and hands each frame to the session as its body
// arrives, so that a poll cut short keeps what arrived: the next poll's
// received says so. early: the first poll of a link made before the
// session first attached.
func poll(ctx context.Context, d *requestDeadline, l *link, u string, early bool) error {
	s := l.s
	req, err := newRequest(d.start(), http.MethodGet, u, s.negotiated().Token, nil)
	if err != nil {
		d.stop()
		return fmt.Errorf("longpoll: %w", redact(err))
	}
	resp, err := s.hc.Do(req)
	if !d.stop() {
		if err == nil {
			resp.Body.Close()
		}
		return fmt.Errorf("longpoll: no answer within %v: %w", d.timeout, context.DeadlineExceeded)
	}
	if err != nil {
		return fmt.Errorf("longpoll: %w", redact(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		switch resp.StatusCode {
		case http.StatusNotFound:
			return goneError(early)
		case http.StatusBadRequest:
			return endSession(wire.StatusProtocolError, wire.TruncateReason("longpoll refused: "+readErrorMessage(resp)))
		}
		return fmt.Errorf("longpoll: %w", &statusError{resp.StatusCode, readErrorMessage(resp)})
	}
	// A 200 that is no batch (a captive portal's page, a login page a
	// redirect led to) proves nothing: the attempt fails.
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/octet-stream") {
		return fmt.Errorf("longpoll: %w", &statusError{resp.StatusCode, fmt.Sprintf("Content-Type %q is not application/octet-stream", ct)})
	}
	l.established()
	err = readBatchBody(d, resp.Body, compactResponse(resp.Header.Get("Content-Type")), s.negotiated().MaxMessageBytes, func(f wire.Frame) error {
		return l.deliver(ctx, f)
	})
	var ee *endError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee), ctx.Err() != nil:
		return err
	case errors.Is(err, wire.ErrMessageTooBig):
		return parseError(err)
	}
	// A cut or a mangled body: the frames before the fault were
	// counted, so poll again.
	return fmt.Errorf("longpoll: %w", err)
}

// compactResponse reports whether contentType marks a response in compact
// framing (PROTOCOL.md section 4.6): a server that ignored the compact
// parameter answers in batches.
func compactResponse(contentType string) bool {
	switch contentType { // what the server sends, without parsing it
	case "application/octet-stream" + wire.CompactMediaParam:
		return true
	case "application/octet-stream":
		return false
	}
	_, params, err := mime.ParseMediaType(contentType)
	return err == nil && params[wire.CompactParam] == "1"
}
