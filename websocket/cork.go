package websocket

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// corkLimit is how many bytes a corked connection collects before it writes
// them anyway.
const corkLimit = 64 << 10

// corkBuffers holds the buffers of corked connections between batches, so
// that an idle connection holds none.
var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// corkConn is the network connection under a WebSocket. While corked, what
// gorilla writes collects in a buffer and goes out in one write when the
// writer uncorks it, so a batch of messages costs one system call rather
// than one per message. Writes from other goroutines (gorilla answering a
// ping or a close from the reader) join the buffer while it is corked.
type corkConn struct {
	net.Conn
	raw syscall.RawConn // the socket, for tryUncork; nil without one
	now nowWriter       // tryUncork's write, kept to allocate nothing per call

	mu     sync.Mutex
	buf    *[]byte // non-nil while corked; guarded by mu
	hold   bool    // collect past corkLimit rather than wait: tryUncork follows; guarded by mu
	failed error   // the error of a failed write; guarded by mu
}

// Write implements net.Conn.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return 0, c.failed
	}
	if c.buf == nil {
		return c.Conn.Write(p)
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= corkLimit && !c.hold {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// writeFrame writes a frame's header and payload as one unit: a write from
// another goroutine (gorilla answering a ping) never lands between them.
func (c *corkConn) writeFrame(header, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return c.failed
	}
	if c.buf == nil { // not corked: one write all the same
		_, err := c.Conn.Write(append(append(make([]byte, 0, len(header)+len(payload)), header...), payload...))
		return err
	}
	*c.buf = append(append(*c.buf, header...), payload...)
	if len(*c.buf) >= corkLimit && !c.hold {
		return c.flushLocked()
	}
	return nil
}

// cork starts collecting writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		c.buf = corkBuffers.Get().(*[]byte)
	}
}

// corkHold starts collecting writes for tryUncork: nothing goes to the
// network before it, however much collects.
func (c *corkConn) corkHold() {
	c.cork()
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

// uncork writes what was collected, waiting for the network as long as the
// write deadline allows, and lets later writes through.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return c.failed
	}
	err := c.flushLocked()
	c.releaseLocked()
	return err
}

// tryUncork writes what was collected as far as the socket takes it at
// once, without waiting. When everything went out it lets later writes
// through and reports done; otherwise the rest stays collected, and the
// connection corked, for uncork to finish.
func (c *corkConn) tryUncork() (done bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = false
	if c.buf == nil {
		return true, c.failed
	}
	if c.failed != nil {
		return false, c.failed
	}
	if c.raw != nil && len(*c.buf) > 0 {
		n, err := c.now.write(c.raw, *c.buf)
		if err != nil {
			c.failed = err
			return false, err
		}
		*c.buf = (*c.buf)[:copy(*c.buf, (*c.buf)[n:])]
	}
	if len(*c.buf) > 0 {
		return false, nil
	}
	c.releaseLocked()
	return true, nil
}

// releaseLocked returns the buffer to the pool and ends the cork.
func (c *corkConn) releaseLocked() {
	b := c.buf
	c.buf = nil
	c.hold = false
	if cap(*b) <= corkLimit*2 {
		*b = (*b)[:0]
		corkBuffers.Put(b)
	}
}

func (c *corkConn) flushLocked() error {
	if len(*c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	if err != nil {
		c.failed = err
	}
	return err
}

// corkingWriter hands gorilla's Upgrade a corkConn when it hijacks the
// connection.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn
}

// Hijack implements http.Hijacker.
func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc, raw: rawConn(nc)}
	return w.conn, brw, nil
}
