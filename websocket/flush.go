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
// from a delivery: what another goroutine sends while a message callback
// runs goes out when the callback returns, or this long after it was sent
// at the latest. The timer that enforces it is armed at most once per
// deferLimit and never stopped by a delivery that returns in time, so a
// steady flow of replies costs no timer operation per message (each one
// would wake another thread of the runtime).
const deferLimit = 5 * time.Millisecond

// heartbeatSlack is how early a heartbeat may go out: a timer that fires a
// little before the interval ends does not wait for another round.
const heartbeatSlack = 5 * time.Millisecond

// kick is the link's Notify: it asks for a flush. It is called with the
// session's lock held, so it only schedules.
func (c *connection) kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kickLocked()
}

func (c *connection) kickLocked() {
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

// kickShared is the link's NotifyShared, called on the goroutine of a
// publish that has queued a message for this connection's session: when
// no flush is under way, it flushes right here, as a hand-written
// broadcast loop writes, without starting a goroutine. It never waits for
// the network: what the socket does not take at once, and anything
// that may wait (the WebSocket close), is left to a flush on a goroutine
// of its own, which the flush here hands over to.
func (c *connection) kickShared() {
	c.mu.Lock()
	if c.state != flushIdle || c.delivering {
		c.kickLocked()
		c.mu.Unlock()
		return
	}
	c.state = flushRunning
	c.flushes.Add(1)
	heartbeat := c.heartbeatDue
	c.heartbeatDue = false
	c.mu.Unlock()
	c.inline = true
	ok, handOff := c.writeAvailable(heartbeat)
	c.inline = false
	if !ok {
		c.fail()
	}
	c.mu.Lock()
	if c.state == flushRunning && (handOff || c.pending) {
		// The goroutine takes over this flush, its count in flushes
		// included.
		c.pending = true
		c.mu.Unlock()
		go c.flush()
		return
	}
	if c.state == flushRunning {
		c.state = flushIdle
	}
	c.rest, c.unsent, c.closeOwed = nil, false, nil // the connection is over if any is left
	c.mu.Unlock()
	c.flushes.Done()
}

// deferLocked leaves the flush to the reader, for at most deferLimit. The
// state is flushIdle.
func (c *connection) deferLocked() {
	c.state = flushDeferred
	c.deferredAt = nanotime()
	if c.deferArmed {
		return // it fires in time, and looks again
	}
	c.deferArmed = true
	if c.deferTimer == nil {
		c.deferTimer = time.AfterFunc(deferLimit, c.deferTick)
	} else {
		c.deferTimer.Reset(deferLimit)
	}
}

// deferTick starts the flush the reader has not come back for within
// deferLimit, or waits on for a flush deferred since the timer was armed.
func (c *connection) deferTick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deferArmed = false
	if c.state != flushDeferred {
		return
	}
	if wait := deferLimit - time.Duration(nanotime()-c.deferredAt); wait > 0 {
		c.deferArmed = true
		c.deferTimer.Reset(wait)
		return
	}
	c.startFlushLocked()
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
	if !c.writeLeft() {
		c.fail()
	}
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
		if ok, _ := c.writeAvailable(heartbeat); !ok {
			c.fail()
		}
	}
}

// writeLeft writes what a flush on a publisher's goroutine handed over
// (kickShared): the bytes the socket did not take at once, then the
// WebSocket close. It reports whether the writes went well.
func (c *connection) writeLeft() bool {
	if c.unsent {
		if c.sock.send(c.rest) != nil {
			return false
		}
		c.rest, c.unsent = nil, false
	}
	if ce := c.closeOwed; ce != nil {
		c.closeOwed = nil
		c.closeConn(int(ce.Code), wire.TruncateReason(ce.Reason))
	}
	return true
}

// writeAvailable writes everything the link has now, and a heartbeat when
// one is due and nothing else went out. It reports whether the writes went
// well. On a publisher's goroutine (c.inline) it stops at what would wait,
// and reports in handOff that a flush on a goroutine of its own must go
// on: write what is unsent and c.closeOwed, and collect again.
func (c *connection) writeAvailable(heartbeat bool) (ok, handOff bool) {
	wrote := false
	for {
		b, err := c.link.Collect(maxBatchBytes)
		if err != nil {
			if c.inline {
				return true, true // the WebSocket close may wait
			}
			switch {
			case errors.Is(err, session.ErrSuperseded):
				c.closeConn(StatusSuperseded, "superseded")
			case errors.Is(err, session.ErrUnreachable):
				// The session moved to another process (it lost its
				// lease): no close frame, the client attaches again.
				c.closeConn(ws.CloseServiceRestart, "")
			default: // session.ErrFinished: the client's close frame
				c.closeConn(ws.CloseNormalClosure, "")
			}
			return true, false
		}
		if b.Empty() {
			if heartbeat && !wrote {
				return c.write(session.Batch{}), c.unsent
			}
			return true, c.unsent
		}
		if !c.write(b) {
			return false, false
		}
		wrote = true
		if b.Close != nil {
			// The WebSocket closes with the session's code and reason.
			if c.inline {
				c.closeOwed = b.Close
				return true, true
			}
			c.closeConn(int(b.Close.Code), wire.TruncateReason(b.Close.Reason))
			return true, false
		}
		if c.inline {
			// No need to look again: a flush on a publisher's goroutine
			// starts from an idle connection, with everything queued
			// before taken, and whatever was queued since the Collect
			// above has set c.pending (kickShared hands it over).
			return true, c.unsent
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
	if c.state == flushDeferred || c.state == flushIdle {
		c.startFlushLocked()
	}
}
