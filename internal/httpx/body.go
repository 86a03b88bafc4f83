package httpx

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"time"
)

// ReadBody reads the body of a send or negotiate request: at most limit
// bytes of it, within timeout (zero: no bound), so that a body sent a byte
// at a time holds its own request only, and only that long. Memory follows
// the bytes that arrive, not the length the request announces. When the
// body cannot be read, ReadBody answers (413 body too big; 408 request
// timeout, closing the connection; 400 for a body cut short) and returns
// the error, with problem, when not empty, the message under which the
// caller logs it at Warn (a client's fault worth a warning).
func ReadBody(w http.ResponseWriter, r *http.Request, limit int, timeout time.Duration) (body []byte, problem string, err error) {
	rc := http.NewResponseController(w)
	// This deadline replaces the one IgnoreBody set; the connection cannot
	// be reused after a timeout.
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	rc.SetReadDeadline(deadline)
	body, err = readBody(w, r, limit)
	if err == nil {
		// The body is in; the request may now wait (for room in the
		// session's queue) as long as its client does: net/http reads on
		// to see the client go. The connection serves the next request.
		rc.SetReadDeadline(time.Time{})
		if w.Header().Get("Connection") == "close" {
			w.Header().Del("Connection")
		}
		return body, "", nil
	}
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		Error(w, http.StatusRequestEntityTooLarge, MsgBodyTooBig)
		return nil, "tether: body too big", err
	case errors.As(err, &ne) && ne.Timeout():
		w.Header().Set("Connection", "close")
		Error(w, http.StatusRequestTimeout, MsgRequestTimeout)
		return nil, "tether: body too slow", err
	default:
		BadRequest(w, "reading body: "+err.Error())
	}
	return nil, "", err
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

// IgnoreBody keeps net/http from waiting for the body of r, when it has
// one, unless the handler reads it (ReadBody): the connection is closed
// after the answer, and reading the rest of the body fails at once. Without
// it, net/http reads what is left of an unread body (up to 256 KiB) before
// it writes the answer's headers and again once the handler returns, with
// no deadline (README's http.Server sets no ReadTimeout, which would cut
// streams): a request announcing a body it never sends would hold its
// connection and goroutine for good, and an attach its session's
// connection, on every endpoint but send and negotiate. HTTP/2 waits for no
// unread body.
func IgnoreBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 || r.ProtoMajor != 1 {
		return
	}
	w.Header().Set("Connection", "close")
	http.NewResponseController(w).SetReadDeadline(time.Now())
}

// AnswerWithin bounds, from now, the writing of the answer to the request w
// serves: writes fail once d has passed (zero: no bound), net/http's last
// flush, once the handler returns, included. A handler that waits before it
// answers calls it again when it is done waiting. Without it, a client that
// reads no answer (that sends request after request on one connection and
// reads nothing) would hold its connection and goroutine for good once the
// network's buffers are full: README's http.Server sets no WriteTimeout,
// which would cut streams.
func AnswerWithin(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
	}
}
