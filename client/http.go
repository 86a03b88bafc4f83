package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/wire"
)

// maxResponseBytes bounds one HTTP response body the client reads.
const maxResponseBytes = 64 << 20

// do sends one request with the session's HTTP client, bounded by d; see
// roundTrip. A request that overruns fails even if its answer came at the
// last moment: the loop that made it ends, and the protocol makes what it
// carried safe to send or ask for again.
func (s *Session) do(d *requestDeadline, method, u string, body []byte) (reply, error) {
	rp, err := roundTrip(d.start(), s.hc, method, u, s.negotiated().Token, body)
	if !d.stop() {
		return reply{}, fmt.Errorf("no answer within %v: %w", d.timeout, context.DeadlineExceeded)
	}
	return rp, err
}

// requestDeadline bounds the requests of one loop, one at a time, each to
// timeout: one context for the loop, canceled by one timer that runs while
// a request is under way, instead of a context and a timer per request.
// Once a request has overrun, the context stays canceled: the loop ends.
type requestDeadline struct {
	parent  context.Context
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
	timer   *time.Timer
}

// newRequestDeadline returns a requestDeadline for requests made under
// ctx; stop it with close.
func newRequestDeadline(ctx context.Context, timeout time.Duration) *requestDeadline {
	d := &requestDeadline{parent: ctx, timeout: timeout}
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.timer = time.AfterFunc(timeout, d.cancel)
	d.timer.Stop()
	return d
}

// start arms the timer and returns the context of the next request.
func (d *requestDeadline) start() context.Context {
	d.timer.Reset(d.timeout)
	return d.ctx
}

// stop disarms the timer. It reports false when the request overran (and
// not because the loop's own context ended).
func (d *requestDeadline) stop() bool {
	return d.timer.Stop() || d.parent.Err() != nil
}

func (d *requestDeadline) close() {
	d.timer.Stop()
	d.cancel()
}

// requestURL builds the URLs of one endpoint's requests for one link: the
// endpoint and the session's parameters are encoded once, so that each
// request only appends its counts.
type requestURL struct {
	base []byte // "{prefix}{name}?session=..."
	buf  []byte
}

// requestURL returns the URLs of endpoint name's requests. The token is not
// in them: every request carries it in the Tether-Token header (newRequest).
func (l *link) requestURL(name string) *requestURL {
	base := endpoint(l.s.prefix, name, nil)
	base += "?session=" + url.QueryEscape(l.s.negotiated().Session)
	if hb := l.heartbeatParam(); hb != "" {
		base += "&heartbeatMs=" + hb
	}
	return &requestURL{base: []byte(base)}
}

// with returns the URL with received and, when not negative, seq, and with
// compact=1 when compact is set. The string is new; u may be reused at once.
func (u *requestURL) with(received uint64, seq int64, compact bool) string {
	b := append(u.buf[:0], u.base...)
	b = append(b, "&received="...)
	b = strconv.AppendUint(b, received, 10)
	if seq >= 0 {
		b = append(b, "&seq="...)
		b = strconv.AppendInt(b, seq, 10)
	}
	if compact {
		b = append(b, "&"+wire.CompactParam+"=1"...)
	}
	u.buf = b
	return string(b)
}

// reply is a response read whole.
type reply struct {
	status int
	body   []byte
	// contentType is the response's Content-Type header.
	contentType string
}

// roundTrip sends one request of the session whose token is token with hc
// under ctx and returns the response with its whole body. A non-nil body is
// sent as a batch (application/octet-stream). Errors never carry the URL.
func roundTrip(ctx context.Context, hc *http.Client, method, u, token string, body []byte) (reply, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := newRequest(ctx, method, u, token, rd)
	if err != nil {
		return reply{}, redact(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return reply{}, redact(err)
	}
	defer resp.Body.Close()
	data, err := readBody(resp)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, body: data, contentType: resp.Header.Get("Content-Type")}, nil
}

// readBody reads resp's body whole, at most maxResponseBytes of it, into a
// buffer of the announced size when the response states one.
func readBody(resp *http.Response) ([]byte, error) {
	n := resp.ContentLength
	if n == 0 || resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	if n > maxResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	if n > 0 {
		data := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			return nil, fmt.Errorf("reading response: %w", redact(err))
		}
		return data, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", redact(err))
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	return data, nil
}

// release tells the server, best effort, that a session Dial could not
// attach is not wanted, so that it does not wait for the resume window: one
// send request holding a close frame, which needs no transport attached.
func release(ctx context.Context, hc *http.Client, prefix *url.URL, neg *negotiation, timeout time.Duration) {
	body := wire.AppendBatchFrame(nil, wire.AppendClose(nil, wire.CloseError{
		Code: wire.StatusNormalClosure, Reason: "no usable transport"}))
	q := url.Values{"session": {neg.Session}, "seq": {"1"}, "received": {"0"}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	roundTrip(ctx, hc, http.MethodPost, endpoint(prefix, "send", q), neg.Token, body)
}

// newRequest makes a request of a session whose token is token: in the
// Tether-Token header, never in the URL, where proxies and servers log it
// (PROTOCOL.md section 3).
func newRequest(ctx context.Context, method, u, token string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err == nil {
		req.Header[httpx.TokenHeader] = []string{token}
	}
	return req, err
}

// redact strips the URL from err: it names the session.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s request: %w", ue.Op, ue.Err)
	}
	return err
}

// errorMessage returns the message of one of Tether's error answers
// (PROTOCOL.md section 9): a text/plain body of one line of UTF-8 ending in
// a line feed, at most wire.MaxReasonBytes before it, so that it can be a
// close reason as it is. Any other answer, such as the HTML page of a proxy
// in front, carries no message of Tether's: it returns "HTTP " and the
// status.
func errorMessage(status int, contentType string, body []byte) string {
	line, ok := bytes.CutSuffix(body, []byte("\n"))
	if ok && strings.HasPrefix(contentType, "text/plain") && len(line) > 0 && len(line) <= wire.MaxReasonBytes &&
		!bytes.ContainsAny(line, "\r\n") && utf8.Valid(line) {
		return string(line)
	}
	return "HTTP " + strconv.Itoa(status)
}

// readErrorMessage reads enough of resp's body for errorMessage and
// returns its message.
func readErrorMessage(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, wire.MaxReasonBytes+2))
	return errorMessage(resp.StatusCode, resp.Header.Get("Content-Type"), body)
}
