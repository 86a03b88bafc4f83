package websocket

import (
	"sync"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// outLimit is how many bytes a write collects before it hands them to the
// socket: a batch costs one system call rather than one per message,
// and a large one no more memory than this.
const outLimit = 64 << 10

// outBuffers holds the buffers frames are collected in, as *[]byte, so that
// a connection holds none between writes.
var outBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// maxKeptFrame is the largest frame buffer a connection keeps between
// writes.
const maxKeptFrame = 4 << 10

// write writes b's frames: its messages, then an acknowledgement, a close
// frame or, for an empty batch, a heartbeat. They go to the socket in one
// write (in writes of outLimit bytes for a large batch). It reports whether
// the writes went well. Called by the flush under way.
func (c *connection) write(b session.Batch) bool {
	c.out = outBuffers.Get().(*[]byte)
	ok := c.writeFrames(b)
	if ok && len(*c.out) > 0 {
		ok = c.send(*c.out)
	}
	if cap(*c.out) <= 2*outLimit {
		*c.out = (*c.out)[:0]
		outBuffers.Put(c.out)
	}
	c.out = nil
	if ok {
		c.lastWrite.Store(nanotime())
	}
	return ok
}

func (c *connection) writeFrames(b session.Batch) bool {
	if c.compact && (len(b.Messages) > 1 || len(b.Messages) == 1 && (b.AckDue || b.Close != nil || b.Messages[0].Type == wire.Binary)) {
		return c.writeBatch(b)
	}
	for i, m := range b.Messages {
		var ok bool
		switch shared := b.SharedFrames(i); {
		case m.Type == wire.Binary:
			ok = c.writeMessage(ws.BinaryMessage, m.Data)
		case shared != nil:
			ok = c.writeMessage(ws.TextMessage, wire.RawEncoding.SharedFrame(m, shared))
		default:
			ok = c.writeText(wire.RawEncoding.AppendMessage(c.frame[:0], m))
		}
		if !ok {
			return false
		}
	}
	if b.AckDue && !c.writeText(wire.AppendAck(c.frame[:0], b.Received)) {
		return false
	}
	if b.Close != nil {
		return c.writeText(wire.AppendClose(c.frame[:0], *b.Close))
	}
	if b.Empty() {
		return c.writeText(wire.AppendHeartbeat(c.frame[:0]))
	}
	return true
}

// writeBatch writes b's frames as one compact batch in one binary WebSocket
// message (PROTOCOL.md section 4.2), built in c.frame.
func (c *connection) writeBatch(b session.Batch) bool {
	p := c.frame[:0]
	for i, m := range b.Messages {
		p = wire.RawEncoding.AppendCompactMessage(p, m, b.SharedFrames(i))
	}
	if b.AckDue {
		var f [24]byte
		p = wire.AppendCompactFrame(p, wire.AppendAck(f[:0], b.Received))
	}
	if b.Close != nil {
		p = wire.AppendCompactFrame(p, wire.AppendClose(nil, *b.Close))
	}
	c.keepFrame(p)
	return c.writeMessage(ws.BinaryMessage, p)
}

// writeText writes p, built in c.frame, as a text WebSocket message, and
// keeps the buffer for the next frame (unless it grew large).
func (c *connection) writeText(p []byte) bool {
	c.keepFrame(p)
	return c.writeMessage(ws.TextMessage, p)
}

// keepFrame keeps p's buffer for the next frame, unless it grew large.
func (c *connection) keepFrame(p []byte) {
	if cap(p) <= maxKeptFrame {
		c.frame = p
	} else {
		c.frame = nil
	}
}

// writeMessage adds p as one WebSocket message of type typ to c.out: it
// frames the message itself (no allocation, where gorilla's writer costs
// one per message with a buffer pool). Once c.out holds outLimit bytes they
// go to the socket.
func (c *connection) writeMessage(typ int, p []byte) bool {
	*c.out = append(appendFrameHeader(*c.out, byte(typ), len(p)), p...)
	if len(*c.out) < outLimit {
		return true
	}
	ok := c.send(*c.out)
	*c.out = (*c.out)[:0]
	return ok
}

// send hands p to the socket, and reports whether that went well. A flush
// on its own goroutine waits for the network, for at most WriteTimeout; on
// a publisher's goroutine (c.inline) it does not wait: what the socket does
// not take at once is left (in c.rest, or in the socket) for the goroutine
// it hands over to, and c.unsent is set.
func (c *connection) send(p []byte) bool {
	if !c.inline {
		return c.sock.send(p) == nil
	}
	if !c.unsent {
		n, err := c.sock.trySend(p)
		switch {
		case err != nil:
			return false
		case n == len(p):
			return true
		case n > 0: // the socket keeps the rest
			c.unsent = true
			return true
		}
		c.unsent = true
	}
	c.rest = append(c.rest, p...)
	return true
}
