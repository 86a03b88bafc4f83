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

	"github.com/tetherkit/tether/session"
	wire "github.com/tetherkit/tether/transport"
)

// maxResponseBytes bounds one HTTP response body the client reads.
const maxResponseBytes = 64 << 20

// do sends one request with the session's HTTP client; see roundTrip.
func (s *Session) do(ctx context.Context, method, u string, body []byte, timeout time.Duration) (reply, error) {
	return roundTrip(ctx, s.hc, method, u, body, timeout)
}

// requestURL builds the URLs of one endpoint's requests for one link: the
// endpoint and the session's parameters are encoded once, so that each
// request only appends its counts.
type requestURL struct {
	base []byte // "{prefix}{name}?session=...&token=..."
	buf  []byte
}

func (l *link) requestURL(name string) *requestURL {
	base := endpoint(l.s.prefix, name, nil)
	base += "?session=" + url.QueryEscape(l.s.neg.Session) + "&token=" + url.QueryEscape(l.s.neg.Token)
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

// roundTrip sends one request with hc, bounded by timeout, and returns the
// response with its whole body. A non-nil body is sent as a batch
// (application/octet-stream). Errors never carry the URL, which holds the
// session token.
func roundTrip(ctx context.Context, hc *http.Client, method, u string, body []byte, timeout time.Duration) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return reply{}, redact(err)
	}
	if body != nil {
		req.Header["Content-Type"] = batchContentType
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

// batchContentType is the Content-Type of a send request, shared by every
// request (net/http only reads it).
var batchContentType = []string{"application/octet-stream"}

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
	body := wire.AppendBatchFrame(nil, wire.AppendClose(nil, session.CloseError{
		Code: session.StatusNormalClosure, Reason: "no usable transport"}))
	q := url.Values{"session": {neg.Session}, "token": {neg.Token}, "seq": {"1"}, "received": {"0"}}
	roundTrip(ctx, hc, http.MethodPost, endpoint(prefix, "send", q), body, timeout)
}

// redact strips the URL, which holds the session token, from err.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s request: %w", ue.Op, ue.Err)
	}
	return err
}

// firstLine returns the first line of an error body, trimmed, at most 200
// bytes of it.
func firstLine(body []byte) string {
	body = body[:min(len(body), 200)]
	if i := bytes.IndexByte(body, '\n'); i >= 0 {
		body = body[:i]
	}
	return strings.TrimSpace(string(body))
}
