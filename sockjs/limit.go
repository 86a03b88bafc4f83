package sockjs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
)

// errMessageTooBig fails the read that would take a client's WebSocket
// message past Options.MaxBodyBytes.
var errMessageTooBig = errors.New("sockjs: websocket message too big")

// sockjs-go reads each WebSocket message from a client whole, decoding its
// JSON into memory, with no limit on its size (and no read deadline): one
// message could take all the server's memory. So the bridge hands sockjs-go
// a network connection that reads the client's frame headers as they go by
// and fails the read that would take a message past MaxBodyBytes, the
// bound of an xhr_send body, which carries the same JSON. sockjs-go then
// ends the SockJS session, and serve ends the Tether session with 1009.

// limitWebSocket returns w and r for sockjs-go's WebSocket handshake: w
// hands gorilla a limitedConn when it hijacks the connection, and r's
// context holds the flag (tooBigKey) that the limitedConn sets.
func limitWebSocket(w http.ResponseWriter, r *http.Request, limit int) (http.ResponseWriter, *http.Request) {
	tooBig := new(atomic.Bool)
	lw := &limitingWriter{ResponseWriter: w, limit: int64(limit), tooBig: tooBig}
	return lw, r.WithContext(context.WithValue(r.Context(), tooBigKey{}, tooBig))
}

// tooBigKey is the request context key of the flag a limitedConn sets.
type tooBigKey struct{}

// messageTooBig reports whether the WebSocket of the SockJS session opened
// by r read a message over the limit.
func messageTooBig(r *http.Request) bool {
	f, _ := r.Context().Value(tooBigKey{}).(*atomic.Bool)
	return f != nil && f.Load()
}

// limitingWriter hands gorilla's Upgrade a limitedConn when it hijacks the
// connection.
type limitingWriter struct {
	http.ResponseWriter
	limit  int64
	tooBig *atomic.Bool
}

// Hijack implements http.Hijacker.
func (w *limitingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &limitedConn{Conn: nc, limit: w.limit, tooBig: w.tooBig}, brw, nil
}

// limitedConn follows the frames a WebSocket client sends (RFC 6455
// section 5.2) through the bytes read, and fails the read once a data
// message's payload, its fragments added up, exceeds limit. Reads are made
// by one goroutine, gorilla's reader.
type limitedConn struct {
	net.Conn
	limit  int64
	tooBig *atomic.Bool

	head    [14]byte // the frame header being read
	headLen int      // its bytes read so far
	payload int64    // payload bytes of the current frame still to come
	message int64    // payload bytes of the current data message so far
}

// Read implements net.Conn.
func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if c.payload > 0 {
			skip := min(c.payload, int64(len(b)))
			c.payload -= skip
			b = b[skip:]
			continue
		}
		c.head[c.headLen] = b[0]
		c.headLen++
		b = b[1:]
		if c.headLen < 2 || c.headLen < headerLen(c.head[1]) {
			continue
		}
		c.headLen = 0
		length := int64(c.head[1] & 0x7f)
		switch length {
		case 126:
			length = int64(binary.BigEndian.Uint16(c.head[2:]))
		case 127:
			length = int64(binary.BigEndian.Uint64(c.head[2:]) & (1<<63 - 1))
		}
		c.payload = length
		switch c.head[0] & 0x0f {
		case 1, 2: // a text or binary message starts
			c.message = length
		case 0: // a continuation
			c.message += min(length, c.limit+1)
		}
		if c.message > c.limit {
			c.tooBig.Store(true)
			return 0, errMessageTooBig
		}
	}
	return n, err
}

// headerLen returns the length of a frame header whose second byte is b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4 // the masking key
	}
	return n
}
