package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tetherkit/tether/session"
	wire "github.com/tetherkit/tether/transport"
)

// websocketTransport attaches WebSocket connections, which carry frames in
// both directions, one frame per WebSocket message (PROTOCOL.md section 4.2).
type websocketTransport struct{}

func (websocketTransport) name() string { return "websocket" }

// Acknowledgement pacing on WebSocket (PROTOCOL.md section 5.1).
const (
	ackEvery    = 64                     // messages received before an ack goes out at once
	ackDelay    = 100 * time.Millisecond // longest wait before acking the end of a burst
	closeLinger = 2 * time.Second        // wait for the server to end the connection after a close frame
)

// run dials {prefix}websocket with the attach parameters; the connection
// is established once the handshake succeeds.
func (websocketTransport) run(ctx context.Context, l *link) error {
	s := l.s
	u := endpoint(s.prefix, "websocket", l.query(int64(l.received), int64(l.seq)))
	u = "ws" + strings.TrimPrefix(u, "http") // http→ws, https→wss
	conn, resp, err := s.opts.Dialer.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return errSessionGone
		}
		if resp != nil {
			return fmt.Errorf("websocket: handshake answered %d: %w", resp.StatusCode, err)
		}
		return fmt.Errorf("websocket: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// The type byte and a little slack; a larger message is refused below.
	conn.SetReadLimit(int64(s.neg.MaxMessageBytes) + 64)
	l.established()

	c := &wsConn{l: l, conn: conn, hb: s.neg.heartbeat(), readDone: make(chan struct{})}
	go c.readLoop(ctx)
	werr := c.writeLoop(ctx)
	select {
	case <-c.readDone:
		var ee *endError
		if errors.As(c.readErr, &ee) && ee.notify {
			// Tell the server why, best effort: the writer has returned.
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			conn.WriteMessage(websocket.TextMessage, wire.AppendClose(nil, ee.ce))
		}
	default:
	}
	conn.Close() // unblocks the reader
	<-c.readDone
	return firstEnd(werr, c.readErr)
}

// wsConn is one attached WebSocket: a reader goroutine and the writer, which
// is the only goroutine that writes data messages.
type wsConn struct {
	l        *link
	conn     *websocket.Conn
	hb       time.Duration
	readDone chan struct{} // closed when readLoop has returned
	readErr  error         // readLoop's result, set before readDone is closed
}

// readLoop reads frames and delivers them until the connection fails, is
// silent for two heartbeat intervals, or the session ends.
func (c *wsConn) readLoop(ctx context.Context) {
	defer close(c.readDone)
	maxMsg := c.l.s.neg.MaxMessageBytes
	for {
		c.conn.SetReadDeadline(time.Now().Add(2 * c.hb))
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
			f = wire.Frame{Type: wire.FrameBinary, Message: session.Message{Type: session.Binary, Data: p}}
		} else if f, err = wire.ParseFrame(p, maxMsg); err != nil {
			c.readErr = parseError(err)
			return
		}
		if err := c.l.deliver(ctx, f); err != nil {
			c.readErr = err
			return
		}
	}
}

// writeLoop writes the connection's client messages, from the attach's seq
// on, acknowledgements and heartbeats, and the close frame once Close was
// called. It returns when the reader has, or on a write error.
func (c *wsConn) writeLoop(ctx context.Context) error {
	s := c.l.s
	w := c.l.initial
	next := c.l.seq // number of the next client message to write
	acked := c.l.received
	lastWrite := time.Now()
	hbTimer := time.NewTimer(c.hb)
	defer hbTimer.Stop()
	var ackTimer *time.Timer
	var ackC <-chan time.Time
	defer func() {
		if ackTimer != nil {
			ackTimer.Stop()
		}
	}()
	write := func(typ int, p []byte) error {
		c.conn.SetWriteDeadline(time.Now().Add(2 * c.hb))
		if err := c.conn.WriteMessage(typ, p); err != nil {
			return fmt.Errorf("websocket write: %w", err)
		}
		lastWrite = time.Now()
		return nil
	}
	writeAck := func() error {
		r := s.received.Load()
		if r == acked {
			return nil
		}
		if err := write(websocket.TextMessage, wire.AppendAck(nil, r)); err != nil {
			return err
		}
		acked = r
		if ackTimer != nil {
			ackTimer.Stop()
			ackTimer, ackC = nil, nil
		}
		return nil
	}
	var buf []byte
	for {
		for i, m := range w.msgs {
			if w.first+uint64(i) < next {
				continue
			}
			var err error
			if m.Type == session.Binary {
				err = write(websocket.BinaryMessage, m.Data)
			} else {
				buf = wire.RawEncoding.AppendMessage(buf[:0], m)
				err = write(websocket.TextMessage, buf)
			}
			if err != nil {
				return err
			}
			next++
		}
		if w.closeReq != nil {
			return c.closeHandshake(ctx, *w.closeReq, write)
		}
		if r := s.received.Load(); r-acked >= ackEvery {
			if err := writeAck(); err != nil {
				return err
			}
		} else if r > acked && ackC == nil {
			ackTimer = time.NewTimer(ackDelay)
			ackC = ackTimer.C
		}
		select {
		case <-w.changed:
		case <-s.recvSignal:
		case <-ackC:
			ackTimer, ackC = nil, nil
			if err := writeAck(); err != nil {
				return err
			}
		case <-hbTimer.C:
			if idle := time.Since(lastWrite); idle < c.hb {
				hbTimer.Reset(c.hb - idle)
				break
			}
			if err := write(websocket.TextMessage, wire.AppendHeartbeat(nil)); err != nil {
				return err
			}
			hbTimer.Reset(c.hb)
		case <-c.readDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		var err error
		if w, err = s.out.view(next, 0); err != nil {
			// The server acknowledged messages this connection has not
			// carried yet; numbering on it would skip. Attach again.
			return fmt.Errorf("websocket: %w", err)
		}
	}
}

// closeHandshake writes the close frame, after every message (the caller
// wrote them), then a WebSocket close, and waits a little for the server to
// end the connection, so the frame is read before the connection goes.
func (c *wsConn) closeHandshake(ctx context.Context, ce session.CloseError, write func(int, []byte) error) error {
	if err := write(websocket.TextMessage, wire.AppendClose(nil, ce)); err != nil {
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
