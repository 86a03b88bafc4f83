package websocket

import (
	"errors"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// flushState says who writes a connection's next batch, if anyone. It is
// guarded by connection.mu. At most one flush runs at a time: the goroutine
// that moves the state to flushRunning is the only one that takes from the
// link, encodes frames and hands them to the socket, until it moves the
// state back to flushIdle. So batches never interleave, and the socket's
// lock orders them with gorilla's control frames.
//
// A flush runs on a goroutine of its own, which ends once nothing is left
// to write, or on the reader after a delivery. It is never run by the
// goroutine that calls Session.Send: a sender never waits for the network,
// and while the flush writes, what is sent meanwhile collects in the
// session's queue and goes out together in its next write.
type flushState uint8

const (
	// flushIdle: nothing is being written and no goroutine waits to
	// write; the next kick starts a flush.
	flushIdle flushState = iota
	// flushRunning: one goroutine is flushing; it counts in
	// connection.flushes.
	flushRunning
	// flushDeferred: work waits for the reader, which is delivering a
	// message and flushes when the delivery returns, so that a reply
	// made in a message callback costs no goroutine switch; deferTimer
	// starts a flush of its own if the delivery takes over deferLimit.
	flushDeferred
	// flushStopped: the connection is over; no flush starts again (a
	// flush under way returns at its next look).
	flushStopped
)

// deferLimit bounds how long a flush waits for the reader to come back
// from a delivery.
const deferLimit = time.Millisecond

// heartbeatSlack is how early a heartbeat may go out: a timer that fires a
// little before the interval ends does not wait for another round.
const heartbeatSlack = 5 * time.Millisecond

// kick is the link's Notify: it asks for a flush. It is called with the
// session's lock held, so it only schedules.
func (c *connection) kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = true
	if c.state != flushIdle {
		return // the flush under way, or the reader, takes it
	}
	if c.delivering {
		c.deferLocked()
		return
	}
	c.startFlushLocked()
}

// deferLocked leaves the flush to the reader, for at most deferLimit.
func (c *connection) deferLocked() {
	c.state = flushDeferred
	if c.deferTimer == nil {
		c.deferTimer = time.AfterFunc(deferLimit, c.deferTick)
	} else {
		c.deferTimer.Reset(deferLimit)
	}
}

// deferTick starts the flush the reader has not come back for.
func (c *connection) deferTick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == flushDeferred {
		c.startFlushLocked()
	}
}

// startFlushLocked starts a flush in a goroutine of its own. The state is
// flushIdle or flushDeferred.
func (c *connection) startFlushLocked() {
	c.state = flushRunning
	c.flushes.Add(1)
	go c.flush()
}

// flush writes what the link has until nothing is pending. It runs in
// state flushRunning with one count in flushes, and ends both. A write
// waits for the client for at most WriteTimeout; a failed one ends the
// connection.
func (c *connection) flush() {
	for {
		c.mu.Lock()
		if !c.pending || c.state == flushStopped {
			if c.state == flushRunning {
				c.state = flushIdle
			}
			c.mu.Unlock()
			c.flushes.Done()
			return
		}
		c.pending = false
		heartbeat := c.heartbeatDue
		c.heartbeatDue = false
		c.mu.Unlock()
		if !c.writeAvailable(heartbeat) {
			c.fail()
		}
	}
}

// writeAvailable writes everything the link has now, and a heartbeat when
// one is due and nothing else went out. It reports whether the writes went
// well.
func (c *connection) writeAvailable(heartbeat bool) bool {
	wrote := false
	for {
		b, err := c.link.Collect(maxBatchBytes)
		if err != nil {
			switch {
			case errors.Is(err, session.ErrSuperseded):
				c.closeConn(StatusSuperseded, "superseded")
			default: // session.ErrFinished: the client's close frame
				c.closeConn(ws.CloseNormalClosure, "")
			}
			return true
		}
		if b.Empty() {
			if heartbeat && !wrote {
				return c.write(session.Batch{})
			}
			return true
		}
		if !c.write(b) {
			return false
		}
		wrote = true
		if b.Close != nil {
			// The WebSocket closes with the session's code and reason.
			c.closeConn(int(b.Close.Code), wire.TruncateReason(b.Close.Reason))
			return true
		}
	}
}

// heartbeatTick sends a heartbeat when nothing has been written for a
// heartbeat interval, and rearms itself for the next one. A heartbeat does
// not wait for the reader's delivery.
func (c *connection) heartbeatTick() {
	idle := time.Duration(nanotime() - c.lastWrite.Load())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == flushStopped {
		return
	}
	if next := c.hb - idle; next > heartbeatSlack {
		c.heartbeat.Reset(next)
		return
	}
	c.heartbeatDue = true
	c.heartbeat.Reset(c.hb)
	c.pending = true
	switch c.state {
	case flushDeferred:
		c.deferTimer.Stop()
		c.startFlushLocked()
	case flushIdle:
		c.startFlushLocked()
	}
}
