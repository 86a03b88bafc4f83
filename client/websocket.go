package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tetherkit/tether/internal/httpx"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// websocketTransport attaches WebSocket connections, which carry frames in
// both directions, one frame per WebSocket message (PROTOCOL.md section 4.2).
type websocketTransport struct{}

func (websocketTransport) name() string { return transport.WebSocket }

// Acknowledgement pacing on WebSocket (PROTOCOL.md section 5.1): at once
// after ackEvery messages; otherwise once ackQuiet passes without a
// message (the end of a burst), and at the latest a heartbeat interval
// after the first message left unacknowledged. So the rounds of a
// broadcast that come closer together than ackQuiet cost one
// acknowledgement per burst, not one per ackQuiet.
const (
	ackEvery    = 64              // messages received before an ack goes out at once
	ackQuiet    = time.Second     // a pause in messages that ends a burst
	closeLinger = 2 * time.Second // wait for the server to end the connection after a close frame
)

// run dials {prefix}websocket with the attach parameters; the connection
// is established once the handshake succeeds.
func (websocketTransport) run(ctx context.Context, l *link) error {
	s := l.s
	u := endpoint(s.prefix, transport.WebSocket, l.query(int64(l.received), int64(l.seq)))
	u = "ws" + strings.TrimPrefix(u, "http") // http→ws, https→wss
	// The handshake carries the token in the Tether-Token header, as every
	// request does (PROTOCOL.md section 3).
	early := l.early
	conn, resp, err := s.opts.Dialer.DialContext(ctx, u, http.Header{httpx.TokenHeader: {s.negotiated().Token}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			if early && s.fellBack.Load() {
				// Fallen back to websocket alone (balancer.go): this
				// handshake reached a server without the session, a
				// failed attempt; the next may reach the one that holds it.
				return fmt.Errorf("websocket: handshake %w", unknownSession)
			}
			return goneError(early)
		}
		if resp != nil {
			return fmt.Errorf("websocket: handshake %w: %w", &statusError{resp.StatusCode, ""}, err)
		}
		return fmt.Errorf("websocket: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// The type byte and a little slack; a larger message is refused below.
	conn.SetReadLimit(int64(s.negotiated().MaxMessageBytes) + 64)
	l.established()

	c := &wsConn{
		l: l, conn: conn, hb: l.hb,
		readDone: make(chan struct{}), poke: make(chan struct{}, 1),
		next: l.seq, acked: l.received,
	}
	c.nextSeen.Store(l.seq)
	go c.readLoop(ctx)
	werr := c.writeLoop(ctx)
	s.ws.CompareAndSwap(c, nil) // no more writes from Send
	select {
	case <-c.readDone:
		var ee *endError
		if errors.As(c.readErr, &ee) && ee.notify {
			// Tell the server why, best effort: the writer has returned.
			c.wmu.Lock()
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			conn.WriteMessage(websocket.TextMessage, wire.AppendClose(nil, ee.ce))
			c.wmu.Unlock()
		}
	default:
	}
	conn.Close() // unblocks the reader
	<-c.readDone
	return firstEnd(werr, c.readErr)
}

// wsConn is one attached WebSocket: a reader goroutine, and writes made by
// whichever goroutine holds wmu. Send writes its message itself when no
// write is under way (Session.flushWebSocket), so a message costs no
// goroutine switch; the connection's writer goroutine writes what was
// queued before it attached, acknowledgements, heartbeats and the close.
type wsConn struct {
	l        *link
	conn     *websocket.Conn
	hb       time.Duration
	readDone chan struct{} // closed when readLoop has returned
	readErr  error         // readLoop's result, set before readDone is closed
	poke     chan struct{} // capacity 1: wakes the writer goroutine

	wmu       sync.Mutex
	next      uint64           // guarded by wmu; number of the next client message to write
	acked     uint64           // guarded by wmu; received count last acknowledged
	lastWrite time.Time        // guarded by wmu
	buf       []byte           // guarded by wmu
	werr      error            // guarded by wmu; the first failed write, after which none is tried
	closeReq  *wire.CloseError // guarded by wmu; seen in the outbox, for the writer goroutine
	nextSeen  atomic.Uint64    // next, readable without wmu

	ackMu      sync.Mutex
	ackTimer   *time.Timer // guarded by ackMu; fires ackTick
	ackStopped bool        // guarded by ackMu; the connection is over: no more timer
	ackArmed   atomic.Bool // the timer runs
	ackDue     atomic.Bool // the timer fired: acknowledge what was received
	// ackFrom is when the first message left unacknowledged arrived, and
	// lastMessage when the last message did, in Unix nanoseconds.
	ackFrom     atomic.Int64
	lastMessage atomic.Int64
}

// readLoop reads frames and delivers them until the connection fails, is
// silent for two heartbeat intervals, or the session ends.
func (c *wsConn) readLoop(ctx context.Context) {
	defer close(c.readDone)
	maxMsg := c.l.s.negotiated().MaxMessageBytes
	message := false // the frame read last was a message
	for {
		now := time.Now()
		if message {
			// Just handled: this is when the burst was last seen going on.
			c.lastMessage.Store(now.UnixNano())
		}
		c.l.touch(now)
		c.conn.SetReadDeadline(now.Add(2 * c.hb))
		typ, p, err := c.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.readErr = parseError(wire.ErrMessageTooBig)
			} else {
				c.readErr = fmt.Errorf("websocket read: %w", err)
			}
			return
		}
		var f wire.Frame
		if typ == websocket.BinaryMessage {
			if len(p) > maxMsg {
				c.readErr = parseError(wire.ErrMessageTooBig)
				return
			}
			f = wire.Frame{Type: wire.FrameBinary, Message: wire.Message{Type: wire.Binary, Data: p}}
		} else if f, err = wire.ParseFrame(p, maxMsg); err != nil {
			c.readErr = parseError(err)
			return
		}
		if err := c.l.deliver(ctx, f); err != nil {
			c.readErr = err
			return
		}
		message = f.IsMessage()
		if s := c.l.s; message && s.received.Load()-s.ackedSent.Load() == 1 {
			c.armAck(now)
		}
	}
}

// armAck makes sure an acknowledgement goes out once the burst that the
// first message left unacknowledged (arrived at now) starts ends, or a
// heartbeat interval has passed: a timer, so the writer goroutine is not
// woken for every message received, nor the timer reset.
func (c *wsConn) armAck(now time.Time) {
	if !c.ackArmed.CompareAndSwap(false, true) {
		return
	}
	c.ackFrom.Store(now.UnixNano())
	c.lastMessage.Store(now.UnixNano())
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	switch {
	case c.ackStopped:
	case c.ackTimer == nil:
		c.ackTimer = time.AfterFunc(ackQuiet, c.ackTick)
	default:
		c.ackTimer.Reset(ackQuiet)
	}
}

// ackWait returns how long the acknowledgement armed at ackFrom waits
// still at now: until ackQuiet has passed since the last message, but at
// most until a heartbeat interval since ackFrom. 0 means it is due.
func (c *wsConn) ackWait(now time.Time) time.Duration {
	t := now.UnixNano()
	quiet := c.lastMessage.Load() + int64(ackQuiet) - t
	latest := c.ackFrom.Load() + int64(c.hb) - t
	return time.Duration(max(0, min(quiet, latest)))
}

// ackTick acknowledges what was received, once the burst has ended (or
// rearms the timer for when it may have). It writes the acknowledgement
// itself, on the timer's goroutine, when no write is under way, as Send
// writes its message: after a broadcast to many sessions, each one's
// acknowledgement then costs no switch to its writer goroutine. Otherwise,
// and for what the write leaves to do (an error, a close, messages queued
// meanwhile), it wakes the writer, which acknowledges when it writes next.
func (c *wsConn) ackTick() {
	if d := c.ackWait(time.Now()); d > 0 {
		c.ackMu.Lock()
		if !c.ackStopped {
			c.ackTimer.Reset(d)
		}
		c.ackMu.Unlock()
		return
	}
	c.ackArmed.Store(false)
	c.ackDue.Store(true)
	if !c.wmu.TryLock() {
		c.wake()
		return
	}
	err := c.flushLocked(c.ackDue.Swap(false))
	closing := c.closeReq != nil
	pendingAck := c.l.s.received.Load() > c.acked
	c.wmu.Unlock()
	switch {
	case err != nil || closing:
		c.wake()
	case pendingAck:
		c.armAck(time.Now()) // what arrived while this was written
	}
	if c.l.s.out.has(c.nextSeen.Load()) {
		c.wake() // Send found the lock held
	}
}

// stopAck stops the acknowledgement timer for good.
func (c *wsConn) stopAck() {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	c.ackStopped = true
	if c.ackTimer != nil {
		c.ackTimer.Stop()
	}
}

// writeLocked writes one WebSocket message. c.wmu must be held.
func (c *wsConn) writeLocked(typ int, p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	c.conn.SetWriteDeadline(time.Now().Add(2 * c.hb))
	if err := c.conn.WriteMessage(typ, p); err != nil {
		c.werr = fmt.Errorf("websocket write: %w", err)
		c.conn.Close() // the reader ends, and with it the connection
		return c.werr
	}
	c.lastWrite = time.Now()
	c.l.touch(c.lastWrite)
	return nil
}

// flushLocked writes the client messages queued from c.next on, and an
// acknowledgement when ackEvery server messages wait for one (or, with
// ackNow, any). It records a close request for the writer goroutine, which
// sends the close frame. c.wmu must be held.
func (c *wsConn) flushLocked(ackNow bool) error {
	s := c.l.s
	w, err := s.out.view(c.next, 0)
	for dropped := (*droppedError)(nil); errors.As(err, &dropped); w, err = s.out.view(c.next, 0) {
		// The server acknowledged messages this connection has not
		// carried yet: another one carried them (a send request while
		// this WebSocket attached, in an upgrade). The connection numbers
		// its messages from its attach's seq, so it carries a stand-in
		// for each, an empty text message, which the server drops as a
		// duplicate by its number without reading it (PROTOCOL.md 5.2).
		for ; c.next <= dropped.acked; c.next++ {
			if err := c.writeLocked(websocket.TextMessage, wire.RawEncoding.AppendMessage(c.buf[:0], wire.Message{Type: wire.Text})); err != nil {
				return err
			}
		}
	}
	if err != nil {
		c.werr = fmt.Errorf("websocket: %w", err)
		c.conn.Close()
		return c.werr
	}
	if err := c.writeWindowLocked(w); err != nil {
		return err
	}
	if w.closeReq != nil {
		c.closeReq = w.closeReq
	}
	if r := s.received.Load(); r > c.acked && (ackNow || r-c.acked >= ackEvery) {
		if err := c.writeLocked(websocket.TextMessage, wire.AppendAck(c.buf[:0], r)); err != nil {
			return err
		}
		c.acked = r
		s.ackedSent.Store(r)
	}
	return nil
}

// writeWindowLocked writes w's messages from c.next on. c.wmu must be held.
func (c *wsConn) writeWindowLocked(w window) error {
	for i, m := range w.msgs {
		if w.first+uint64(i) < c.next {
			continue
		}
		var err error
		if m.Type == wire.Binary {
			err = c.writeLocked(websocket.BinaryMessage, m.Data)
		} else {
			c.buf = wire.RawEncoding.AppendMessage(c.buf[:0], m)
			err = c.writeLocked(websocket.TextMessage, c.buf)
		}
		if err != nil {
			return err
		}
		c.next++
	}
	c.nextSeen.Store(c.next)
	return nil
}

// flushFromSend writes what Send queued, unless a write is under way: the
// writer that holds wmu then looks again before it lets go (the loop
// below), so nothing queued is left behind.
func (c *wsConn) flushFromSend() {
	for c.wmu.TryLock() {
		err := c.flushLocked(false)
		closing := c.closeReq != nil
		c.wmu.Unlock()
		if err != nil || closing || !c.l.s.out.has(c.nextSeen.Load()) {
			if closing {
				c.wake()
			}
			return
		}
	}
}

func (c *wsConn) wake() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// writeLoop writes what was queued before the connection attached, then
// serves what Send does not write itself: acknowledgements, heartbeats and
// the close frame once Close was called. It returns when the reader has,
// or on a write error.
func (c *wsConn) writeLoop(ctx context.Context) error {
	s := c.l.s
	s.ackedSent.Store(c.acked) // the attach's received acknowledges
	c.wmu.Lock()
	c.lastWrite = time.Now()
	err := c.writeWindowLocked(c.l.initial)
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	// From here on Send writes too; one flush catches what it queued
	// before.
	s.ws.Store(c)
	c.flushFromSend()
	hbTimer := time.NewTimer(c.hb)
	defer hbTimer.Stop()
	defer c.stopAck()
	for {
		select {
		case <-c.poke:
		case <-s.recvSignal:
		case <-hbTimer.C:
			c.wmu.Lock()
			idle := time.Since(c.lastWrite)
			if idle >= c.hb {
				err = c.writeLocked(websocket.TextMessage, wire.AppendHeartbeat(c.buf[:0]))
				idle = 0
			}
			c.wmu.Unlock()
			if err != nil {
				return err
			}
			hbTimer.Reset(c.hb - idle)
			if s.out.has(c.nextSeen.Load()) {
				c.wake() // Send found the lock held
			}
			continue
		case <-c.readDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		c.wmu.Lock()
		err := c.flushLocked(c.ackDue.Swap(false))
		closeReq := c.closeReq
		pendingAck := s.received.Load() > c.acked
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		if closeReq != nil {
			return c.closeHandshake(ctx, *closeReq)
		}
		if pendingAck {
			c.armAck(time.Now()) // what this flush did not acknowledge
		}
		// Send may have queued more while the lock was held here.
		if s.out.has(c.nextSeen.Load()) {
			c.wake()
		}
	}
}

// closeHandshake writes the close frame, after every message (the caller
// wrote them), then a WebSocket close, and waits a little for the server to
// end the connection, so the frame is read before the connection goes.
func (c *wsConn) closeHandshake(ctx context.Context, ce wire.CloseError) error {
	c.wmu.Lock()
	err := c.flushLocked(false) // what Send queued before Close, if any is left
	if err == nil {
		err = c.writeLocked(websocket.TextMessage, wire.AppendClose(nil, ce))
	}
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	c.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	t := time.NewTimer(closeLinger)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return &endError{ce: ce, local: true}
}
