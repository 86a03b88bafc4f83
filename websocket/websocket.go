package websocket

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/transport"
)

// Name is the transport's name in negotiate responses and URLs.
const Name = "websocket"

// StatusSuperseded is the WebSocket close status of a connection replaced
// by a newer one of the same session. It is not a Tether close: the session
// goes on.
const StatusSuperseded = 4009

// maxBatchBytes bounds the message bytes one Pull hands the writer.
const maxBatchBytes = 256 << 10

// Options configure the WebSocket transport. A nil *Options means defaults.
type Options struct {
	// ReadBufferSize is gorilla's read buffer size. Default 0: the
	// connection keeps the 4 KiB read buffer of the HTTP server it was
	// hijacked from instead of allocating another.
	ReadBufferSize int
	// WriteBufferSize is gorilla's write buffer size; the buffer is taken
	// from a pool for each message, so idle connections hold none.
	// Default 4096.
	WriteBufferSize int
	// EnableCompression negotiates per-message deflate. Default false.
	EnableCompression bool
}

// Transport is the WebSocket transport.
type Transport struct {
	upgrader ws.Upgrader
}

// New returns a WebSocket transport. opts is not retained.
func New(opts *Options) *Transport {
	o := Options{WriteBufferSize: 4096}
	if opts != nil {
		if opts.ReadBufferSize > 0 {
			o.ReadBufferSize = opts.ReadBufferSize
		}
		if opts.WriteBufferSize > 0 {
			o.WriteBufferSize = opts.WriteBufferSize
		}
		o.EnableCompression = opts.EnableCompression
	}
	return &Transport{upgrader: ws.Upgrader{
		ReadBufferSize:    o.ReadBufferSize,
		WriteBufferSize:   o.WriteBufferSize,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: o.EnableCompression,
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

// ServeAttach implements transport.Transport.
func (t *Transport) ServeAttach(w http.ResponseWriter, r *http.Request, a *transport.Attach) {
	if !ws.IsWebSocketUpgrade(r) {
		transport.BadRequest(w, "not a WebSocket handshake")
		return
	}
	cw := &corkingWriter{ResponseWriter: w}
	conn, err := t.upgrader.Upgrade(cw, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	link, err := a.Session.Attach(session.AttachOptions{Transport: Name, Received: a.Received, AcksInBand: true})
	if err != nil {
		conn.WriteControl(ws.CloseMessage, ws.FormatCloseMessage(int(session.StatusSessionExpired), "unknown session"),
			time.Now().Add(a.Config.WriteTimeout))
		return
	}
	defer link.Detach()
	c := &connection{conn: conn, cork: cw.conn, link: link, cfg: a.Config, r: r}
	ctx, cancel := context.WithCancel(context.Background())
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		if !c.read(ctx, a.Seq) {
			cancel()
		}
		// Otherwise the reader closed the session: the writer delivers
		// the close frame (or finds the session finished) and ends.
	}()
	if c.write(ctx) {
		// The socket is closed once the client has answered the close
		// (its reader then ends), or after closeGrace: closing it with
		// the client's frames unread would reset the connection, and the
		// client could lose the last frames written, the close frame
		// among them.
		grace := time.NewTimer(closeGrace)
		select {
		case <-readerDone:
		case <-grace.C:
		}
		grace.Stop()
	}
	cancel()
	conn.Close() // unblocks the reader
	<-readerDone
}

// connection is one attached WebSocket.
type connection struct {
	conn *ws.Conn
	cork *corkConn // under conn
	link *session.Link
	cfg  *transport.Config
	r    *http.Request // the handshake, for logs
}

// read delivers client frames to the session until the connection fails
// or the session closes. It reports whether it closed the session itself
// (a protocol error, or the client's close frame), in which case the
// writer must be left to deliver what follows.
func (c *connection) read(ctx context.Context, seq uint64) (closed bool) {
	s := c.link.Session()
	c.conn.SetReadLimit(int64(c.cfg.MaxMessageBytes) + 1)
	dead := 2 * c.cfg.HeartbeatInterval
	for {
		c.conn.SetReadDeadline(time.Now().Add(dead))
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, ws.ErrReadLimit) {
				c.cfg.Warn("tether: message too big", s, c.r, err)
				s.Close(session.StatusMessageTooBig, "message too big")
				return true
			}
			return false
		}
		var f transport.Frame
		if typ == ws.BinaryMessage {
			f = transport.Frame{Type: transport.FrameBinary, Message: session.Message{Type: session.Binary, Data: data}}
		} else if f, err = transport.ParseFrame(data, c.cfg.MaxMessageBytes); err != nil {
			c.cfg.Warn("tether: malformed frame", s, c.r, err)
			if errors.Is(err, transport.ErrMessageTooBig) {
				s.Close(session.StatusMessageTooBig, "message too big")
			} else {
				s.Close(session.StatusProtocolError, "malformed frame")
			}
			return true
		}
		switch {
		case f.IsMessage():
			if err := s.Deliver(ctx, seq, []session.Message{f.Message}); err != nil {
				if errors.Is(err, session.ErrSequenceGap) {
					c.cfg.Warn("tether: sequence gap", s, c.r, err)
					return true
				}
				return false
			}
			seq++
		case f.Type == transport.FrameAck:
			if err := s.Acknowledge(f.Received); err != nil {
				c.cfg.Warn("tether: bad acknowledgement", s, c.r, err)
				s.Close(session.StatusProtocolError, "bad acknowledgement")
				return true
			}
		case f.Type == transport.FrameClose:
			s.CloseFromClient(f.Close)
			return true
		}
	}
}

// closeGrace bounds how long a connection waits for its client to answer
// a WebSocket close before it closes the socket.
const closeGrace = 2 * time.Second

// write sends what the session has for the client until the link ends. It
// reports whether it ended by sending a WebSocket close.
func (c *connection) write(ctx context.Context) (closing bool) {
	var frame []byte
	for {
		b, err := c.link.Pull(ctx, c.cfg.HeartbeatInterval, maxBatchBytes)
		if err != nil {
			switch {
			case errors.Is(err, session.ErrSuperseded):
				c.closeConn(StatusSuperseded, "superseded")
				return true
			case errors.Is(err, session.ErrFinished):
				c.closeConn(ws.CloseNormalClosure, "")
				return true
			}
			return false
		}
		c.conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
		if !c.writeBatch(b, &frame) {
			return false
		}
		if b.Close != nil {
			c.closeConn(ws.CloseNormalClosure, "")
			return true
		}
	}
}

// writeBatch writes b's frames: its messages, then an acknowledgement, a
// close frame or, for an empty batch, a heartbeat. They go to the network
// in one write; frame is scratch space kept between batches.
func (c *connection) writeBatch(b session.Batch, frame *[]byte) bool {
	c.cork.cork()
	ok := c.writeFrames(b, frame)
	return c.cork.uncork() == nil && ok
}

func (c *connection) writeFrames(b session.Batch, frame *[]byte) bool {
	for _, m := range b.Messages {
		if m.Type == session.Binary {
			if c.conn.WriteMessage(ws.BinaryMessage, m.Data) != nil {
				return false
			}
		} else if !c.writeText(frame, transport.RawEncoding.AppendMessage((*frame)[:0], m)) {
			return false
		}
	}
	if b.AckDue && !c.writeText(frame, transport.AppendAck((*frame)[:0], b.Received)) {
		return false
	}
	if b.Close != nil {
		return c.writeText(frame, transport.AppendClose((*frame)[:0], *b.Close))
	}
	if b.Empty() {
		return c.writeText(frame, transport.AppendHeartbeat((*frame)[:0]))
	}
	return true
}

// writeText writes p, built in *frame, as a text WebSocket message, and
// keeps the buffer for the next frame.
func (c *connection) writeText(frame *[]byte, p []byte) bool {
	*frame = p
	return c.conn.WriteMessage(ws.TextMessage, p) == nil
}

func (c *connection) closeConn(code int, reason string) {
	c.conn.WriteControl(ws.CloseMessage, ws.FormatCloseMessage(code, reason), time.Now().Add(c.cfg.WriteTimeout))
}
