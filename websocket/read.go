package websocket

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// read delivers client frames to the session until the connection fails.
// Once the session is closing (a fault of the client's, its close frame, or
// a WebSocket close written), it reads on only to let the client's last
// frames and its close answer arrive, discarding them, for at most
// closeGrace after the close: closing the socket with them unread would
// reset the connection, and the client could lose the last frames written
// to it, the close frame among them.
func (c *connection) read(seq uint64) {
	s := c.session
	dead := 2 * c.hb
	// The read deadline moves at most every dead/8, and then to dead and
	// an eighth ahead: a connection is dropped after dead, never before, of
	// silence, at no timer operation per message (each one would wake
	// another thread of the runtime).
	deadlineMoved := nanotime() - int64(dead) // moved first thing
	draining := false
	// fault ends the session for a client's fault: once the application
	// has handled the messages before it, the close frame goes out (as the
	// last frame), then the WebSocket close.
	fault := func(code wire.StatusCode, reason, log string, err error) {
		c.cfg.WarnRemote(log, s, c.remote, err)
		s.Fault(wire.CloseError{Code: code, Reason: reason})
		draining = true
		c.mu.Lock()
		if !c.closing {
			c.conn.SetReadDeadline(time.Now().Add(session.FaultWait + closeGrace))
		}
		c.mu.Unlock()
	}
	for {
		if draining {
			// NextReader skips what is left of the previous message.
			if _, _, err := c.conn.NextReader(); err != nil {
				return
			}
			continue
		}
		// Under mu, so that closeConn's shorter deadline is never
		// overwritten.
		c.mu.Lock()
		if draining = c.closing; !draining {
			if now := nanotime(); now-deadlineMoved >= int64(dead/8) {
				deadlineMoved = now
				c.conn.SetReadDeadline(time.Now().Add(dead + dead/8))
			}
		}
		c.mu.Unlock()
		if draining {
			continue
		}
		typ, data, err := c.readMessage()
		if err != nil {
			switch {
			case errors.Is(err, wire.ErrMessageTooBig):
				fault(wire.StatusMessageTooBig, "message too big", "tether: message too big", err)
				continue
			case errors.Is(err, wire.ErrMalformed):
				fault(wire.StatusProtocolError, "malformed frame", "tether: malformed frame", err)
				continue
			}
			return
		}
		var f wire.Frame
		if typ == ws.BinaryMessage {
			f = wire.Frame{Type: wire.FrameBinary, Message: wire.Message{Type: wire.Binary, Data: data}}
		} else if f, err = wire.ParseFrame(data, c.cfg.MaxMessageBytes); err != nil {
			if errors.Is(err, wire.ErrMessageTooBig) {
				fault(wire.StatusMessageTooBig, "message too big", "tether: message too big", err)
			} else {
				fault(wire.StatusProtocolError, "malformed frame", "tether: malformed frame", err)
			}
			continue
		}
		switch {
		case f.IsMessage():
			err := c.deliver(s, seq, f.Message)
			if errors.Is(err, session.ErrUnreachable) {
				// The session's holder cannot be reached (a cluster's bus
				// failed): nothing was decided, so the connection ends at
				// once and the client attaches again, sending what was
				// not acknowledged.
				return
			}
			if err != nil {
				if errors.Is(err, session.ErrSequenceGap) {
					c.cfg.WarnRemote("tether: sequence gap", s, c.remote, err)
				} else if c.ctx.Err() != nil {
					return
				}
				draining = true
				c.conn.SetReadDeadline(time.Now().Add(session.FaultWait + closeGrace))
				continue
			}
			seq++
		case f.Type == wire.FrameAck:
			if err := s.Acknowledge(f.Received); errors.Is(err, session.ErrUnreachable) {
				return // as for a delivery, above
			} else if err != nil {
				fault(wire.StatusProtocolError, "bad acknowledgement", "tether: bad acknowledgement", err)
			}
		case f.Type == wire.FrameClose:
			s.CloseFromClient(f.Close)
			draining = true
			c.conn.SetReadDeadline(time.Now().Add(closeGrace))
		}
	}
}

// readMessage reads the next WebSocket message. A message larger than a
// frame of the largest Tether message (binary: its payload; text: a type
// byte and the payload in base64) returns an error wrapping
// wire.ErrMessageTooBig (wire.ErrMalformed for a text message whose type
// byte is no message's), the rest of it unread: the limit is the
// session's, on the decoded payload, so it is checked here and by
// ParseFrame rather than by gorilla, whose read limit closes the WebSocket
// before the close frame can go out.
func (c *connection) readMessage() (int, []byte, error) {
	typ, r, err := c.conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	limit := c.textLimit
	if typ == ws.BinaryMessage {
		limit = c.cfg.MaxMessageBytes
	}
	data, err := readWhole(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return 0, nil, err
	}
	if len(data) > limit {
		if typ == ws.TextMessage && !(&wire.Frame{Type: wire.FrameType(data[0])}).IsMessage() {
			// No control frame is that long, nor is a frame of an
			// unknown type well formed: malformed, whatever its
			// length (PROTOCOL.md section 9), not a message too big.
			return 0, nil, fmt.Errorf("%w: a frame of type %q over %d bytes", wire.ErrMalformed, data[0], limit)
		}
		return 0, nil, fmt.Errorf("%w: over %d bytes, limit %d", wire.ErrMessageTooBig, limit, c.cfg.MaxMessageBytes)
	}
	return typ, data, nil
}

// readPool holds the buffers messages are read through, as *[]byte.
var readPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledRead is the largest read buffer put back in readPool.
const maxPooledRead = 64 << 10

// readWhole reads r to its end into a slice of its own, of the size read:
// io.ReadAll (gorilla's ReadMessage too) gives every message, even an
// empty one, an array of at least 512 bytes, which a message queued for
// the application would keep beyond what the queue counts for it. It
// reads through a pooled buffer, then copies.
func readWhole(r io.Reader) ([]byte, error) {
	bp := readPool.Get().(*[]byte)
	buf := (*bp)[:0]
	var err error
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		var n int
		n, err = r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	var data []byte
	if err == io.EOF {
		err = nil
		data = append([]byte{}, buf...)
	}
	if cap(buf) <= maxPooledRead {
		*bp = buf
		readPool.Put(bp)
	}
	return data, err
}

// textLimit returns the size of a text frame holding a message of
// maxMessage bytes in base64.
func textLimit(maxMessage int) int {
	if maxMessage > math.MaxInt/2 {
		return math.MaxInt - 1
	}
	return 1 + base64.StdEncoding.EncodedLen(maxMessage)
}

// deliver hands one message to the session, and writes what the delivery
// produced (an application's reply, an acknowledgement) itself, so that a
// reply made in a message callback costs no goroutine switch: a flush
// deferred to the reader meanwhile (flushDeferred) runs here.
func (c *connection) deliver(s session.Endpoint, seq uint64, m wire.Message) error {
	c.mu.Lock()
	c.delivering = true
	c.mu.Unlock()
	err := s.Deliver(c.deliverCtx, seq, []wire.Message{m})
	c.mu.Lock()
	c.delivering = false
	run := false
	switch c.state {
	case flushDeferred:
		run = true // the timer, left armed, finds nothing deferred
	case flushIdle:
		run = c.pending
	}
	if run {
		c.state = flushRunning
		c.flushes.Add(1)
	}
	c.mu.Unlock()
	if run {
		c.flush()
	}
	return err
}
