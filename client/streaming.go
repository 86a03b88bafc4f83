package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// DefaultStreamStartTimeout is how long the client waits, unless
// Options.StreamStartTimeout says otherwise, for the first heartbeat of an
// sse or streaming response, which the server sends with the prelude at
// once (PROTOCOL.md section 4.5). A response whose first heartbeat has not
// arrived by then is held back by a buffering proxy: the client gives the
// transport up and tries the next one. Through a proxy that
// buffers every response, a client that offers websocket, sse, streaming and
// long polling is therefore on long polling after about twice this time,
// plus however long the WebSocket attempt takes to fail.
const DefaultStreamStartTimeout = 5 * time.Second

// streamingTransport attaches multipart streams: GET {prefix}streaming,
// one batch per part (PROTOCOL.md section 4.4).
var streamingTransport = &streamTransport{kind: transport.Streaming, open: openMultipart}

// ErrBufferedStream is wrapped by the error of a streaming attempt whose
// first heartbeat did not arrive within the stream start timeout.
var ErrBufferedStream = errors.New("stream held back: buffered by a proxy")

// frameDecoder reads the frames of one streaming response in order.
type frameDecoder interface {
	// next reads the next unit of the stream (an event, a part) and calls
	// fn for each of its frames, stopping at fn's first error. It returns
	// io.EOF when the response has ended cleanly.
	next(fn func(wire.Frame) error) error
}

// streamTransport is a transport whose downstream is a series of streaming
// responses: sse and streaming differ only in how a response is decoded.
// Each response is attached with the received count; when one ends
// cleanly (at the server's stream byte limit (MaxStreamBytes)), the next one is opened at once.
// Client messages go through the shared send loop. A response lives as
// long as the connection works, so an Options.HTTPClient with a Timeout
// cuts it at that timeout (harmless: the client attaches again).
type streamTransport struct {
	kind string
	open func(resp *http.Response, maxMessage int) (frameDecoder, error)
}

func (t *streamTransport) name() string { return t.kind }

// errWatchdog stops reading a response once its watchdog has fired.
var errWatchdog = errors.New("stream: watchdog fired")

// errStreamStopped stops the stream loop once Close was called: from then
// on only the send loop, which carries the close frame, decides the outcome.
var errStreamStopped = errors.New("stream: stopped for close")

// run streams and sends side by side. Only the stream establishes the
// connection, by its first heartbeat: a send answered proves nothing about
// a proxy that buffers responses.
func (t *streamTransport) run(ctx context.Context, l *link) error {
	// The send loop proves its requests on a link of its own, which
	// nobody waits on.
	sl := &link{s: l.s, received: l.received, seq: l.seq, initial: l.initial, early: l.early, est: make(chan struct{})}
	return runBesideSends(ctx, t.kind, l, sl, t.streamLoop)
}

// streamLoop opens responses one after the other until one fails.
func (t *streamTransport) streamLoop(ctx context.Context, l *link) error {
	for early := l.early; ; early = false {
		if l.s.out.closing() {
			return errStreamStopped
		}
		if err := l.s.gate.wait(ctx, l); err != nil {
			return err
		}
		if err := t.stream(ctx, l, early); err != nil {
			return err
		}
	}
}

// stream carries one response. It returns nil when the response ended
// cleanly, so that the next one is opened. A response whose first
// heartbeat does not arrive within the stream start timeout fails with
// ErrBufferedStream; one that then stays silent for two heartbeat
// intervals is dead. early: the first response of a link made before the
// session first attached.
func (t *streamTransport) stream(ctx context.Context, l *link, early bool) error {
	s := l.s
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var started, expired atomic.Bool
	watchdog := time.AfterFunc(s.opts.StreamStartTimeout, func() {
		expired.Store(true)
		cancel()
	})
	defer watchdog.Stop()
	fail := func(err error) error {
		if expired.Load() || errors.Is(err, errWatchdog) {
			if !started.Load() {
				return fmt.Errorf("%s: no heartbeat within %v: %w", t.kind, s.opts.StreamStartTimeout, ErrBufferedStream)
			}
			return fmt.Errorf("%s: silent for %v", t.kind, 2*l.hb)
		}
		return fmt.Errorf("%s: %w", t.kind, redact(err))
	}

	received := s.received.Load()
	l.n = received
	l.touch(time.Now())
	req, err := newRequest(ctx, http.MethodGet, l.requestURL(t.kind).with(received, -1, true), s.negotiated().Token, nil)
	if err != nil {
		return fail(err)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return goneError(early)
	case http.StatusBadRequest:
		return endSession(wire.StatusProtocolError, wire.TruncateReason(t.kind+" refused: "+readErrorMessage(resp)))
	default:
		return fmt.Errorf("%s: %w", t.kind, &statusError{resp.StatusCode, readErrorMessage(resp)})
	}
	dec, err := t.open(resp, s.negotiated().MaxMessageBytes)
	if err != nil {
		// A 200 that is no stream of this transport (a captive portal's
		// page, a login page a redirect led to): a failed attempt, which
		// OnError reports with its status.
		return &statusError{resp.StatusCode, err.Error()}
	}
	idle := 2 * l.hb
	deliver := func(f wire.Frame) error {
		// Stop the watchdog while delivering: a full inbox makes deliver
		// wait for the application, not for the network.
		if !watchdog.Stop() {
			return errWatchdog
		}
		if started.CompareAndSwap(false, true) {
			l.established()
		}
		err := l.deliver(ctx, f)
		watchdog.Reset(idle)
		return err
	}
	for {
		l.touch(time.Now())
		err := dec.next(deliver)
		var ee *endError
		switch {
		case err == nil:
		case err == io.EOF:
			return nil
		case errors.As(err, &ee):
			return err
		case ctx.Err() != nil:
			return fail(err)
		case errors.Is(err, wire.ErrMessageTooBig):
			return parseError(err)
		default:
			// A cut or a mangled stream: the frames before the fault were
			// counted, so attach again.
			return fail(err)
		}
	}
}

// openMultipart checks that resp is a multipart stream and returns its
// decoder: compact batches in the parts of a response marked compact=1
// (PROTOCOL.md section 4.6), batches otherwise.
func openMultipart(resp *http.Response, maxMessage int) (frameDecoder, error) {
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || !validBoundary(params["boundary"]) {
		return nil, fmt.Errorf("streaming: Content-Type %q is not multipart/x-mixed-replace with a boundary", resp.Header.Get("Content-Type"))
	}
	d := &multipartDecoder{
		p:          newMultipartParser(resp.Body, params["boundary"], multipartPartLimit(maxMessage)),
		maxMessage: maxMessage,
		parse:      wire.ParseBatch,
	}
	if params[wire.CompactParam] == "1" {
		d.parse = wire.ParseCompactBatch
	}
	return d, nil
}

// multipartPartLimit bounds one part's batch: the server's batches hold at
// most 64 KiB of messages, or one message of any allowed size.
func multipartPartLimit(maxMessage int) int {
	return max(64<<10, maxMessage) + maxMessage + 1024
}

// multipartDecoder decodes the batch in each part.
type multipartDecoder struct {
	p          *multipartParser
	maxMessage int
	parse      func(p []byte, maxMessage int, fn func(wire.Frame) error) error
}

// next implements frameDecoder: one part, one batch.
func (d *multipartDecoder) next(fn func(wire.Frame) error) error {
	body, err := d.p.next()
	if err != nil {
		return err
	}
	return d.parse(body, d.maxMessage, fn)
}
