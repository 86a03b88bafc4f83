package websocket

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether/internal/httpx"
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

// maxBatchBytes bounds the message bytes one Collect hands the writer.
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
// another, and writes its frames itself (see socket), so gorilla allocates
// no write buffer for it. Per-message deflate is not offered.
func New() *Transport {
	return &Transport{upgrader: ws.Upgrader{
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{CompactSubprotocol},
		// The server checked the origin before calling ServeAttach.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			refuseHandshake(w, reason.Error())
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
		httpx.BadRequest(w, "not a WebSocket handshake")
		return
	}
	if bad := handshakeError(r); bad != "" {
		refuseHandshake(w, bad)
		return
	}
	c := &connection{cfg: a.Config, hb: a.HeartbeatInterval(), remote: r.RemoteAddr}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.deliverCtx = session.AcknowledgedInBand(c.ctx)
	// Until the first flush, a flush counts as under way: the link's
	// notifications only mark work pending, and the first flush takes it.
	c.state, c.pending = flushRunning, true
	c.flushes.Add(1)
	// Attached before the upgrade, so that a refused attach is answered
	// in HTTP as on every transport (404, 409), never by a WebSocket
	// that opens only to close.
	link, err := a.Session.Attach(session.AttachOptions{
		Transport: Name, Received: a.Received, AcksInBand: true,
		Notify: c.kick, NotifyShared: c.kickShared,
	})
	if err != nil {
		c.cancel()
		httpx.AttachError(w, err)
		return
	}
	hw := &hijackingWriter{ResponseWriter: w, writeTimeout: a.Config.WriteTimeout, socket: &c.sock}
	conn, err := t.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		// The upgrader has answered.
		c.cancel()
		link.Detach()
		return
	}
	c.conn = conn
	c.compact = conn.Subprotocol() == CompactSubprotocol
	c.textLimit = textLimit(a.Config.MaxMessageBytes)
	c.mu.Lock()
	c.link, c.session = link, a.Session
	c.heartbeat = time.AfterFunc(c.hb, c.heartbeatTick)
	c.mu.Unlock()
	c.lastWrite.Store(nanotime())
	go c.serve(a.Seq)
}

// connection is one attached WebSocket. Its concerns are in files of their
// own: reading and delivering client frames (read.go), deciding who writes
// when (flush.go), encoding frames (write.go), the socket every write goes
// through (socket.go), and the close (close.go).
//
// One goroutine reads, for the connection's whole life (serve). Writing is
// done on demand, with no goroutine while there is nothing to write: a
// flush, run by at most one goroutine at a time (flushState), takes what
// the link has and hands it to the socket. Heartbeats come from a timer,
// acknowledgements of client messages from the link's, which holds no
// goroutine either.
type connection struct {
	conn *ws.Conn // reads; writes only the WebSocket close (closeConn)
	// sock is the socket under conn: every write goes through it. A value
	// in the connection, so that a publish writing to many connections
	// reaches each one's memory in one place (see package
	// internal/subscribers).
	sock    socket
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
	// deliverCtx is ctx for Deliver: the connection acknowledges in band,
	// so a durable session stores the client's messages many to a Write.
	deliverCtx context.Context

	lastWrite atomic.Int64   // nanotime of the last write, for heartbeats
	flushes   sync.WaitGroup // one count while state is flushRunning, until that flush returns

	// Guarded by mu.
	mu           sync.Mutex
	state        flushState  // who writes next, if anyone
	pending      bool        // something arrived since the flush last looked
	heartbeatDue bool        // the heartbeat interval passed with nothing written
	delivering   bool        // the reader is in Deliver, and flushes after it
	closing      bool        // the WebSocket close went out: the reader only drains
	heartbeat    *time.Timer // fires heartbeatTick
	deferTimer   *time.Timer // ends a deferral the reader has not come back for
	deferArmed   bool        // deferTimer is armed
	deferredAt   int64       // nanotime of the latest move to flushDeferred

	// Owned by the flush under way (state flushRunning).
	out   *[]byte // frames being collected for one write to the socket
	frame []byte  // scratch for a text frame
	// inline is set while the flush runs on a publisher's goroutine
	// (kickShared), which must not wait for the network: what it cannot
	// write at once it leaves to the flush on a goroutine of its own that
	// it hands over to (writeLeft).
	inline    bool
	unsent    bool             // bytes wait: the socket's rest of a write, then rest
	rest      []byte           // bytes the socket did not take, for send
	closeOwed *wire.CloseError // the WebSocket close, after the bytes
}

// serve runs the connection on its reader goroutine: the first flush (the
// replay, if any, and the acknowledgement a new link owes), then reading
// until the connection ends, then the teardown.
func (c *connection) serve(seq uint64) {
	c.flush()
	c.read(seq)
	c.stop()
	c.link.Detach()
	c.conn.Close()
}

// nanotime is a monotonic clock reading in nanoseconds.
func nanotime() int64 { return int64(time.Since(epoch)) }

var epoch = time.Now()
