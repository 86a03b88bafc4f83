package websocket

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// Name is the transport's name in negotiate responses and URLs.
const Name = transport.WebSocket

// StatusSuperseded is the WebSocket close status of a connection replaced
// by a newer one of the same session. It is not a Tether close: the session
// goes on.
const StatusSuperseded = 4009

// maxBatchBytes bounds the message bytes one Pull hands the writer.
const maxBatchBytes = 256 << 10

// CompactSubprotocol is the WebSocket subprotocol by which a client asks for
// compact batches (PROTOCOL.md section 4.2): the server then sends several
// frames in one binary WebSocket message, a compact batch, wherever it has
// more than one to send. A browser hands each WebSocket message to the page
// as a task of its own, which costs far more than reading one more frame of
// a batch; so a burst of small messages arrives several times faster.
const CompactSubprotocol = "tether.compact"

// Transport is the WebSocket transport.
type Transport struct {
	upgrader ws.Upgrader
}

// New returns a WebSocket transport. A connection keeps the 4 KiB read
// buffer of the HTTP server it was hijacked from instead of allocating
// another; gorilla takes its 4 KiB write buffer from a pool for each
// message it writes, so idle connections hold none. Per-message deflate is
// not offered.
func New() *Transport {
	return &Transport{upgrader: ws.Upgrader{
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{CompactSubprotocol},
		// The server checked the origin before calling ServeAttach.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			transport.BadRequest(w, reason.Error())
		},
	}}
}

// Name implements transport.Transport.
func (t *Transport) Name() string { return Name }

// Bidirectional implements transport.Transport: a WebSocket carries client
// messages too.
func (t *Transport) Bidirectional() bool { return true }

// ServeAttach implements transport.Transport. It returns once the
// connection is attached, leaving it to one goroutine, its reader, for as
// long as it lives: net/http then lets go of the request and of its
// connection's buffers, which a hijacked connection no longer uses. There is
// no writer goroutine while nothing is being written (see connection).
func (t *Transport) ServeAttach(w http.ResponseWriter, r *http.Request, a *transport.Attach) {
	if !ws.IsWebSocketUpgrade(r) {
		transport.BadRequest(w, "not a WebSocket handshake")
		return
	}
	c := &connection{cfg: a.Config, hb: a.HeartbeatInterval(), remote: r.RemoteAddr}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	// Until the first flush, a flush counts as under way: the link's
	// notifications only mark work pending, and the first flush takes it.
	c.running, c.pending = true, true
	c.flushes.Add(1)
	// Attached before the upgrade, so that a refused attach is answered
	// in HTTP as on every transport (404, 409), never by a WebSocket
	// that opens only to close.
	link, err := a.Session.Attach(session.AttachOptions{
		Transport: Name, Received: a.Received, AcksInBand: true, Notify: c.kick, Flush: c.flushFromSend,
	})
	if err != nil {
		c.cancel()
		transport.AttachError(w, err)
		return
	}
	cw := &corkingWriter{ResponseWriter: w}
	conn, err := t.upgrader.Upgrade(cw, r, nil)
	if err != nil {
		// The upgrader has answered.
		c.cancel()
		link.Detach()
		return
	}
	c.conn, c.cork = conn, cw.conn
	c.compact = conn.Subprotocol() == CompactSubprotocol
	c.textLimit = textLimit(a.Config.MaxMessageBytes)
	c.mu.Lock()
	c.link, c.session = link, a.Session
	c.heartbeat = time.AfterFunc(c.hb, c.heartbeatTick)
	c.mu.Unlock()
	c.lastWrite.Store(nanotime())
	go c.serve(a.Seq)
}

// serve runs the connection on its reader goroutine: the first flush (the
// replay, if any, and the acknowledgement a new link owes), then reading
// until the connection ends, then the teardown.
func (c *connection) serve(seq uint64) {
	c.flush(false)
	c.read(seq)
	c.stop()
	c.link.Detach()
	c.conn.Close()
}

// connection is one attached WebSocket.
//
// One goroutine reads. Writing is done on demand, with no
// goroutine while there is nothing to write: when the link has something
// (Notify calls kick), a flush starts in a goroutine of its own and ends
// once nothing is left. While the reader is handing a message to the
// session (an application's message callback may answer it at once), a
// kick is deferred to the reader, which flushes itself when the delivery
// returns: a reply costs no goroutine switch. Heartbeats and delayed
// acknowledgements come from timers, which hold no goroutine either.
type connection struct {
	conn    *ws.Conn
	cork    *corkConn // under conn
	link    session.Link
	session session.Endpoint // the session link is attached to
	cfg     *transport.Config
	hb      time.Duration // the heartbeat interval of this connection (Attach.HeartbeatInterval)
	remote  string        // the handshake's RemoteAddr, for logs
	compact bool          // the client chose CompactSubprotocol: frames go in batches
	// textLimit is the largest text WebSocket message read: a frame of
	// the largest message in base64.
	textLimit int

	// ctx ends when the connection is being torn down; it bounds the
	// reader's wait for room in the session's inbound queue.
	ctx    context.Context
	cancel context.CancelFunc

	lastWrite atomic.Int64 // nanotime of the last write, for heartbeats
	flushes   sync.WaitGroup

	// Guarded by mu.
	mu           sync.Mutex
	running      bool        // a flush is under way
	pending      bool        // something arrived since the flush last looked
	delivering   bool        // the reader is in Deliver and flushes after it
	stopped      bool        // the connection is over: no more flushes
	closing      bool        // a WebSocket close went out
	heartbeatDue bool        // the heartbeat interval passed with nothing written
	heartbeat    *time.Timer // fires heartbeatTick
	deferTimer   *time.Timer // bounds how long a kick waits for the reader
	deferArmed   bool

	frame []byte // scratch for text frames, used by the flush under way
}

// kick asks for a flush. It may be called with the session's lock held
// (Notify), so it only schedules.
func (c *connection) kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = true
	if c.delivering && !c.running && !c.stopped && !c.deferArmed {
		// The reader flushes when its delivery returns; if a message
		// callback takes longer than deferLimit, a flush of its own
		// starts instead.
		c.deferArmed = true
		if c.deferTimer == nil {
			c.deferTimer = time.AfterFunc(deferLimit, c.deferTick)
		} else {
			c.deferTimer.Reset(deferLimit)
		}
		return
	}
	c.startFlushLocked()
}

// deferLimit bounds how long a flush waits for the reader to come back
// from a delivery.
const deferLimit = time.Millisecond

// burstGap is the longest pause between a write and the next Send that
// makes the Send part of a burst (see flushFromSend): at more than about
// 10,000 messages a second on one connection, messages go out in batches.
const burstGap = 100 * time.Microsecond

func (c *connection) deferTick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deferArmed {
		c.deferArmed = false
		c.startFlushLocked()
	}
}

// startFlushLocked starts a flush in a goroutine of its own when one is
// needed and none is under way (or deferred to the reader).
func (c *connection) startFlushLocked() {
	if c.pending && !c.running && !c.stopped && !c.deferArmed {
		c.running = true
		c.flushes.Add(1)
		go c.flush(false)
	}
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
	if c.running || c.stopped || c.deferArmed {
		c.mu.Unlock()
		return
	}
	if c.delivering {
		c.mu.Unlock()
		c.kick() // deferred to the reader, bounded by deferLimit
		return
	}
	if c.compact && nanotime()-c.lastWrite.Load() < int64(burstGap) {
		c.startFlushLocked()
		c.mu.Unlock()
		return
	}
	c.running = true
	c.flushes.Add(1)
	c.mu.Unlock()
	c.flush(true)
}

// flush writes what the link has until nothing is pending. It runs with
// running set and one count in flushes, and ends both. With nowait (on a
// sending goroutine) it does not wait for the network: when the socket is
// full it hands the rest of the write, and the flush, to a goroutine.
func (c *connection) flush(nowait bool) {
	for {
		c.mu.Lock()
		if !c.pending || c.stopped {
			c.running = false
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
// as long as the write deadline allows, then goes on flushing.
func (c *connection) finishFlush() {
	c.conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	if c.cork.uncork() != nil {
		c.fail()
	}
	c.lastWrite.Store(nanotime())
	c.flush(false)
}

// writeResult is how writeAvailable ended.
type writeResult uint8

const (
	writeDone    writeResult = iota // everything available went out
	writeBlocked                    // the socket is full; the rest waits in the cork
	writeFailed                     // the connection failed
)

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
// heartbeat interval, and rearms itself for the next one.
func (c *connection) heartbeatTick() {
	idle := time.Duration(nanotime() - c.lastWrite.Load())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	if next := c.hb - idle; next > heartbeatSlack {
		c.heartbeat.Reset(next)
		return
	}
	c.heartbeatDue = true
	c.heartbeat.Reset(c.hb)
	c.pending = true
	c.deferArmed = false // a heartbeat does not wait for a delivery
	c.startFlushLocked()
}

// heartbeatSlack is how early a heartbeat may go out: a timer that fires a
// little before the interval ends does not wait for another round.
const heartbeatSlack = 5 * time.Millisecond

// fail ends a connection whose write failed: closing the socket ends the
// reader, which tears the rest down.
func (c *connection) fail() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.cancel()
	c.conn.Close()
}

// stop ends the writing side once the reader is done: no flush starts
// again, timers stop, and a flush under way is waited for (the socket is
// closed, so its write fails at once).
func (c *connection) stop() {
	c.mu.Lock()
	c.stopped = true
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
			c.conn.SetReadDeadline(time.Now().Add(dead))
		}
		c.mu.Unlock()
		if draining {
			continue
		}
		typ, data, err := c.readMessage()
		if err != nil {
			if errors.Is(err, wire.ErrMessageTooBig) {
				fault(wire.StatusMessageTooBig, "message too big", "tether: message too big", err)
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
			if err := s.Acknowledge(f.Received); err != nil {
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
// wire.ErrMessageTooBig, the rest of it unread: the limit is the
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
// reply made in a message callback costs no goroutine switch.
func (c *connection) deliver(s session.Endpoint, seq uint64, m wire.Message) error {
	c.mu.Lock()
	c.delivering = true
	c.mu.Unlock()
	err := s.Deliver(c.ctx, seq, []wire.Message{m})
	c.mu.Lock()
	c.delivering = false
	if c.deferArmed {
		c.deferArmed = false
		c.deferTimer.Stop()
	}
	run := c.pending && !c.running && !c.stopped
	if run {
		c.running = true
		c.flushes.Add(1)
	}
	c.mu.Unlock()
	if run {
		c.flush(false)
	}
	return err
}

// closeGrace bounds how long a connection waits for its client to answer
// a WebSocket close before it closes the socket.
const closeGrace = 2 * time.Second

// write writes b's frames: its messages, then an acknowledgement, a close
// frame or, for an empty batch, a heartbeat. They go to the network in one
// write; with nowait, only as far as the socket takes them at once.
func (c *connection) write(b session.Batch, nowait bool) writeResult {
	if !nowait {
		// The cork applies it to the blocking write of what it collected.
		c.conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	}
	if nowait {
		c.cork.corkHold()
	} else {
		c.cork.cork()
	}
	ok := c.writeFrames(b)
	if nowait {
		done, err := c.cork.tryUncork()
		switch {
		case err != nil || !ok:
			return writeFailed
		case !done:
			return writeBlocked
		}
	} else if c.cork.uncork() != nil || !ok {
		return writeFailed
	}
	c.lastWrite.Store(nanotime())
	return writeDone
}

func (c *connection) writeFrames(b session.Batch) bool {
	if c.compact && (len(b.Messages) > 1 || len(b.Messages) == 1 && (b.AckDue || b.Close != nil || b.Messages[0].Type == wire.Binary)) {
		return c.writeBatch(b)
	}
	for _, m := range b.Messages {
		if m.Type == wire.Binary {
			if !c.writeMessage(ws.BinaryMessage, m.Data) {
				return false
			}
		} else if !c.writeText(wire.RawEncoding.AppendMessage(c.frame[:0], m)) {
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
	for _, m := range b.Messages {
		p = wire.RawEncoding.AppendCompactMessage(p, m)
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

// writeMessage writes p as one WebSocket message of type typ. It frames
// the message itself, straight into the cork buffer: no allocation, where
// gorilla's writer costs one per message with a buffer pool.
func (c *connection) writeMessage(typ int, p []byte) bool {
	var h [maxFrameHeader]byte
	return c.cork.writeFrame(appendFrameHeader(h[:0], byte(typ), len(p)), p) == nil
}

// maxKeptFrame is the largest frame buffer a connection keeps between
// writes.
const maxKeptFrame = 4 << 10

// closeConn writes a WebSocket close; the reader then waits for the
// client's answer, for at most closeGrace.
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

// nanotime is a monotonic clock reading in nanoseconds.
func nanotime() int64 { return int64(time.Since(epoch)) }

var epoch = time.Now()
