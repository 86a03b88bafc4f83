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
// state back to flushIdle (a flush blocked on a full socket hands itself,
// still running, to a goroutine that finishes the write). So batches never
// interleave, and the socket's lock orders them with gorilla's control
// frames.
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

// burstGap is the longest pause between a write and the next Send that
// makes the Send part of a burst (see flushFromSend): at more than about
// 10,000 messages a second on one connection, messages go out in batches.
const burstGap = 100 * time.Microsecond

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
	go c.flush(false)
}

// flushFromSend is the link's Flush: Send queued a message, and the
// sending goroutine writes it at once unless a flush is under way (which
// takes the message too) or the reader will flush after its delivery.
// It never waits for the network: what the socket does not take at once
// goes on in a goroutine.
//
// On a compact connection, a Send that comes within burstGap of the last
// write is part of a burst: a flush goroutine writes it instead, and while
// that goroutine writes, the sender queues more, which its next write takes
// as one batch. A lone message is still written at once by its sender.
func (c *connection) flushFromSend() {
	c.mu.Lock()
	c.pending = true
	switch {
	case c.state != flushIdle:
		c.mu.Unlock()
		return
	case c.delivering:
		c.deferLocked()
		c.mu.Unlock()
		return
	case c.compact && nanotime()-c.lastWrite.Load() < int64(burstGap):
		c.startFlushLocked()
		c.mu.Unlock()
		return
	}
	c.state = flushRunning
	c.flushes.Add(1)
	c.mu.Unlock()
	c.flush(true)
}

// flush writes what the link has until nothing is pending. It runs in
// state flushRunning with one count in flushes, and ends both. With nowait
// (on a sending goroutine) it does not wait for the network: when the
// socket is full it hands the rest of the write, and the flush, to a
// goroutine.
func (c *connection) flush(nowait bool) {
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
		switch c.writeAvailable(heartbeat, nowait) {
		case writeFailed:
			c.fail()
		case writeBlocked:
			go c.finishFlush()
			return
		}
	}
}

// finishFlush completes a write the socket did not take at once, waiting
// as long as the write timeout allows, then goes on flushing.
func (c *connection) finishFlush() {
	if c.socket.finish() != nil {
		c.fail()
	}
	c.lastWrite.Store(nanotime())
	c.flush(false)
}

// writeAvailable writes everything the link has now, and a heartbeat when
// one is due and nothing else went out.
func (c *connection) writeAvailable(heartbeat, nowait bool) writeResult {
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
			return writeDone
		}
		if b.Empty() {
			if heartbeat && !wrote {
				return c.write(session.Batch{}, nowait)
			}
			return writeDone
		}
		if r := c.write(b, nowait); r != writeDone {
			return r
		}
		wrote = true
		if b.Close != nil {
			// The WebSocket closes with the session's code and reason.
			c.closeConn(int(b.Close.Code), wire.TruncateReason(b.Close.Reason))
			return writeDone
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
