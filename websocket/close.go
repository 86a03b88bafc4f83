package websocket

import (
	"time"

	ws "github.com/gorilla/websocket"
)

// closeGrace bounds how long a connection waits for its client to answer
// a WebSocket close before it closes the socket.
const closeGrace = 2 * time.Second

// closeConn writes a WebSocket close, once; the reader then waits for the
// client's answer, for at most closeGrace. Called by the flush under way.
// The close goes through gorilla (and so through the socket), which then
// knows it went out and does not answer the client's close with another.
func (c *connection) closeConn(code int, reason string) {
	c.mu.Lock()
	already := c.closing
	c.closing = true
	c.mu.Unlock()
	if already {
		return
	}
	c.conn.WriteControl(ws.CloseMessage, ws.FormatCloseMessage(code, reason), time.Now().Add(c.cfg.WriteTimeout))
	c.cancel() // a reader waiting for inbound room gives up
	c.mu.Lock()
	c.conn.SetReadDeadline(time.Now().Add(closeGrace))
	c.mu.Unlock()
}

// fail ends a connection whose write failed: closing the socket ends the
// reader, which tears the rest down (stop).
func (c *connection) fail() {
	c.mu.Lock()
	c.state = flushStopped
	c.mu.Unlock()
	c.cancel()
	c.conn.Close()
}

// stop ends the writing side once the reader is done: no flush starts
// again, timers stop, and a flush under way is waited for (the socket is
// closed first, so a write blocked on a client that does not read fails at
// once rather than at its deadline).
func (c *connection) stop() {
	c.mu.Lock()
	c.state = flushStopped
	for _, t := range []*time.Timer{c.heartbeat, c.deferTimer} {
		if t != nil {
			t.Stop()
		}
	}
	c.mu.Unlock()
	c.cancel()
	c.conn.Close()
	c.flushes.Wait()
}
