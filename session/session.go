package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tetherkit/tether/wire"
)

// RequestInfo is what the session kept of the negotiate request that
// created it.
type RequestInfo struct {
	// Header is a copy of the negotiate request's headers, as many as
	// the server keeps (package tether keeps at most KeptHeaderBytes).
	Header http.Header
	// RemoteAddr is the negotiate request's RemoteAddr.
	RemoteAddr string
	// Auth is the value the server's authorization hook returned.
	Auth any
}

// Session is one client's session as its application sees it: what a
// Handler or Callbacks is given. It outlives the connections that carry
// it: when one breaks, the client attaches another within the resume window
// and delivery continues with nothing lost, duplicated or reordered. What
// transports call (attaching connections, delivering the client's
// messages) is on Local and Endpoint, which an application is never given.
//
// All methods may be called concurrently. Messages sent by concurrent Send
// calls are delivered in the order the calls took their place in the queue;
// messages are handed to concurrent Recv calls each to exactly one of them.
type Session struct {
	id    string
	token string
	info  RequestInfo
	cfg   *Config

	ctx    context.Context
	cancel context.CancelFunc

	onFinish func() // New's onFinish, given the Local

	deliverMu sync.Mutex         // held by Deliver and OnMessage, taken before mu
	onMessage func(wire.Message) // guarded by mu; set once by OnMessage
	onClose   func(error)        // guarded by mu; set once by OnClose, cleared when called
	closeSet  bool               // guarded by mu; OnClose was called

	onConnection      func(ConnectionEvent) // guarded by mu; set once by OnConnection
	connEvents        []ConnectionEvent     // guarded by mu; events for onConnection, oldest first
	connEventsRunning bool                  // guarded by mu; a goroutine calls onConnection

	mu sync.Mutex

	// Messages to the client: out[i] is message number acked+1+i. acked
	// trails clientAcked while the attached link has yet to hand out
	// messages the client acknowledged (see forgetLocked). Guarded by mu,
	// like every field below.
	out         []queued
	acked       uint64
	clientAcked uint64 // the highest received count the client has stated
	outBytes    int
	dropped     uint64
	spaceFree   signal // Send waiting under SlowConsumerBlock

	// Messages from the client, accepted and not yet read.
	in        []wire.Message
	inBytes   int
	received  uint64 // client messages accepted, read or not
	inReady   signal // Recv waiting for a message
	inWaiting bool   // a Recv waits on inReady with the queue read
	inSpace   signal // Deliver waiting for room

	closeFrame *wire.CloseError // a close to deliver to the client after out
	fault      *wire.CloseError // the client's fault, closing once the application has caught up (Fault)
	faultTimer *time.Timer      // closes with fault after FaultWait
	delivering bool             // Deliver is handing messages to the message callback
	closeErr   *wire.CloseError // what Recv returns once the queue is read
	finished   bool             // no more attaching; the store has let go

	link          *link
	lastTransport string // transport of the last link attached, for Observer
	handedOut     uint64 // highest message number handed to a link
	expiry        *time.Timer
	expiresAt     time.Time     // when the current resume window ends
	resumeWindow  time.Duration // cfg.ResumeWindow unless shortened by Expire
	attachedOnce  bool          // a connection has attached: FirstAttachWindow is over
	transport     string

	// Journaling (journal.go). journal, journalCtx, journalStop and
	// takenOver are set before the session is shared and never change;
	// entry belongs to the goroutine that writes (writing); the rest is
	// guarded by mu.
	journal     Journal
	journalCtx  context.Context // ends when the session finishes
	journalStop context.CancelFunc
	takenOver   bool                   // made by Restore
	entry       Entry                  // the Entry being written
	writing     bool                   // a goroutine writes to the journal (writeJournal)
	stored      uint64                 // the last message number stored
	storedRecv  uint64                 // the received count stored
	storedAcked uint64                 // the acknowledged count stored
	holding     bool                   // a delivery's message callbacks run: write no further than
	holdSent    uint64                 // this message number
	holdRecv    uint64                 // and this received count
	topics      map[string]topicChange // topic changes not stored yet
	offsetMarks []offsetMark           // the topic offsets of queued messages not stored yet, in order
	offsetsAt   map[string]uint64      // topic offsets set without a message (SetTopicOffset), not stored yet
	journalDone signal                 // a Write stored something, or the session finished
	lost        error                  // the session lost its lease (a *movedError)
}

// New returns a session held by this process, with a fresh public id and
// secret token. onFinish, if not nil, is called once when the session ends
// (with its lock held: it must not call back into the session). The wait
// for the client starts at once: a client that never attaches is given up
// after cfg.FirstAttachWindow (or cfg.ResumeWindow, if that is shorter or
// FirstAttachWindow is zero). A nil cfg, and any field of it left zero,
// takes the defaults Config documents.
func New(cfg *Config, info RequestInfo, onFinish func(*Local)) *Local {
	cfg = cfg.withDefaults()
	return newLocal(cfg, cfg.sessionID(), randomID(), info, onFinish, nil)
}

// newLocal returns a session with the given id and token; prepare, if not
// nil, sets its state (New's sessions start empty, Restore's do not) before
// anything else can see it. cfg has its defaults.
func newLocal(cfg *Config, id, token string, info RequestInfo, onFinish func(*Local), prepare func(*Session)) *Local {
	s := &Session{
		id:    id,
		token: token,
		info:  info,
		cfg:   cfg,

		resumeWindow: cfg.ResumeWindow,
	}
	if prepare != nil {
		prepare(s)
	}
	cfg.QueueBudget.join()
	l := &Local{Session: s}
	if onFinish != nil {
		s.onFinish = func() { onFinish(l) }
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Observer != nil {
		cfg.Observer.Opened()
	}
	s.mu.Lock()
	s.startExpiryLocked()
	s.mu.Unlock()
	return l
}

// sessionID returns a fresh public session id: randomID, after NodeID and
// a dot when NodeID is set.
func (cfg *Config) sessionID() string {
	if cfg.NodeID == "" {
		return randomID()
	}
	return cfg.NodeID + "." + randomID()
}

// randomID returns 128 bits from crypto/rand in base64url without padding.
func randomID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand documents a fatal error instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ID returns the public session id: safe to log and show.
func (s *Session) ID() string { return s.id }

// Token returns the secret session token, for transports and stores; it must
// never be logged or shown.
func (l *Local) Token() string { return l.token }

// Request returns what was kept of the negotiate request.
func (s *Session) Request() RequestInfo { return s.info }

// Context returns a context that is canceled when the session closes, from
// either side or because the client did not come back in time.
func (s *Session) Context() context.Context { return s.ctx }

// Transport returns the name of the transport attached now, or "" while no
// connection is attached.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// Dropped returns how many messages Send dropped under SlowConsumerDrop.
func (s *Session) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close closes the session with code and reason. Messages already sent are
// still delivered, then a close frame; the client does not reconnect unless
// code.Reconnects(). Recv returns the messages already received, then a
// CloseError with code and reason. Close on a closed session does nothing
// and returns nil. A code that may not travel in a close frame
// (StatusCode.Valid) returns an error wrapping wire.ErrInvalidCloseCode and
// closes nothing.
func (s *Session) Close(code wire.StatusCode, reason string) error {
	if !code.Valid() {
		return fmt.Errorf("%w: %d", wire.ErrInvalidCloseCode, code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked(wire.CloseError{Code: code, Reason: reason})
	return nil
}

// Err returns the CloseError that ended the session, or nil while it is
// open. A journaled session that lost its lease (Journal) returns an error
// wrapping ErrLeaseLost instead.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeErr == nil {
		return nil
	}
	return s.errLocked()
}

// closeLocked starts a close whose frame is delivered to the client after
// the messages already queued.
func (s *Session) closeLocked(ce wire.CloseError) {
	if s.closeFrame != nil || s.finished {
		return
	}
	if s.fault != nil {
		// The client's fault came first: it is why the session ends.
		ce = *s.fault
		if s.faultTimer != nil {
			s.faultTimer.Stop()
		}
	}
	s.closeFrame = &ce
	if s.closeErr == nil {
		s.closeErr = &ce
	}
	s.cancel()
	s.closedLocked()
	s.spaceFree.broadcast()
	s.inReady.broadcast()
	s.inSpace.broadcast()
	if s.link != nil {
		s.link.notify()
	} else {
		s.startExpiryLocked()
	}
}

// FaultWait is how long a session waits, at most, for its application to
// handle the messages before a client's fault (Fault) before it closes.
const FaultWait = time.Second

// Fault closes the session because its client broke the protocol: with
// StatusMessageTooBig, StatusProtocolError or StatusResumeGap. The fault
// takes its place after the client messages accepted before it: the
// application handles each of them first, and what it sends meanwhile goes
// out before the close frame. So the session closes when the application
// asks for a message after the last of them (Recv), at once when it reads
// with a message callback (OnMessage), and at the latest FaultWait after the
// fault. Until then Send works and Deliver accepts nothing more; a later
// Fault or Close changes nothing but the moment (the first fault's code
// stays).
func (l *Local) Fault(ce wire.CloseError) {
	s := l.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultLocked(ce)
}

func (s *Session) faultLocked(ce wire.CloseError) {
	if s.closeFrame != nil || s.finished || s.fault != nil {
		return
	}
	s.fault = &ce
	if (s.onMessage != nil && !s.delivering) || (s.inWaiting && len(s.in) == 0) {
		s.closeLocked(ce)
		return
	}
	s.inReady.broadcast() // a Recv waiting already closes it
	s.faultTimer = time.AfterFunc(FaultWait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closeLocked(ce)
	})
}

// CloseFromClient ends the session because the client sent a close frame.
// Messages not yet delivered to the client are discarded; messages received
// are still returned by Recv, then ce.
func (l *Local) CloseFromClient(ce wire.CloseError) {
	s := l.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeErr == nil {
		s.closeErr = &ce
	}
	s.finishLocked()
}

// Abort ends the session at once: messages not yet delivered are
// discarded, Send and Recv return ce (Recv after the messages already
// received), and Context is canceled. The client still learns why: the
// connection attached now, or the next one to attach within two heartbeat
// intervals, delivers a close frame with ce. A client that does not attach
// in that time later finds its session unknown.
func (s *Session) Abort(ce wire.CloseError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	// Undelivered messages count as acknowledged so that whatever the
	// client has received, its next attach is served the close frame.
	s.acked += uint64(len(s.out))
	clear(s.out)
	s.out = nil
	s.cfg.QueueBudget.add(-s.outBytes)
	s.outBytes = 0
	if s.closeFrame == nil {
		s.closeLocked(ce)
	}
	if d := 2 * s.cfg.HeartbeatInterval; d < s.resumeWindow {
		s.resumeWindow = d
		if s.link == nil {
			s.startExpiryLocked()
		}
	}
}

// closedLocked calls the OnClose function, if any, once the session has
// closed (its context is canceled): in a goroutine of its own, after the
// delivery under way, whose callbacks come first.
func (s *Session) closedLocked() {
	fn := s.onClose
	if fn == nil {
		return
	}
	s.onClose = nil
	go func() {
		// An empty critical section on purpose: it waits for a delivery
		// under way, whose message callbacks come before fn.
		s.deliverMu.Lock()
		s.deliverMu.Unlock() //lint:ignore SA2001 a barrier, see above
		fn(s.Err())
	}()
}

// Finished reports whether the session has ended for good.
func (l *Local) Finished() bool {
	s := l.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished
}

// finishLocked ends the session for good: no more attaching, the attached
// link is told to stop, and the store lets go.
func (s *Session) finishLocked() {
	if s.finished {
		return
	}
	s.finished = true
	if s.closeErr == nil {
		s.closeErr = &wire.CloseError{Code: wire.StatusAbnormalClosure, Reason: "connection lost"}
	}
	s.cancel()
	s.closedLocked()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	if s.faultTimer != nil {
		s.faultTimer.Stop()
	}
	if o := s.cfg.Observer; o != nil {
		o.Finished(s.transport, s.closeErr.Code)
	}
	if s.link != nil {
		s.link.end()
		s.link = nil
		s.transport = ""
	}
	if s.journal != nil {
		s.journalStop()
		s.journalDone.broadcast()
	}
	clear(s.out)
	s.out = nil
	// The budget lets go of both queues at once: what Recv still returns
	// counts no more.
	s.cfg.QueueBudget.add(-s.outBytes - s.inBytes)
	s.cfg.QueueBudget.leave()
	s.outBytes = 0
	s.spaceFree.broadcast()
	s.inReady.broadcast()
	s.inSpace.broadcast()
	if s.onFinish != nil {
		s.onFinish()
	}
}

// startExpiryLocked starts (or restarts) the resume window, or the first-
// attach window while no connection has attached yet.
func (s *Session) startExpiryLocked() {
	if s.finished {
		return
	}
	d := s.resumeWindow
	if !s.attachedOnce && s.cfg.FirstAttachWindow > 0 {
		d = min(d, s.cfg.FirstAttachWindow)
	}
	s.expiresAt = time.Now().Add(d)
	if s.expiry == nil {
		s.expiry = time.AfterFunc(d, s.expire)
		return
	}
	s.expiry.Reset(d)
}

// Expire shortens the resume window to d, if d is shorter: from now on, the
// session ends when no connection is attached for d. A server that shuts
// down uses it so that clients that are gone do not hold it up.
func (s *Session) Expire(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d >= s.resumeWindow {
		return
	}
	s.resumeWindow = d
	if s.link == nil {
		s.startExpiryLocked()
	}
}

func (s *Session) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != nil || s.finished {
		return
	}
	// A timer that fired while an attach and a detach took the lock
	// before it belongs to an older window: wait out the current one.
	if left := time.Until(s.expiresAt); left > 0 {
		s.expiry.Reset(left)
		return
	}
	s.finishLocked()
}

// signal wakes every goroutine waiting on it. Its channel is made only
// when someone waits. Guarded by the session's mu.
type signal struct{ ch chan struct{} }

func (g *signal) wait() <-chan struct{} {
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	return g.ch
}

func (g *signal) broadcast() {
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}
