package natsbus

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/cluster"
)

// Headers of a request and of a reply.
const (
	// timeoutHeader holds the microseconds left before the requester's
	// deadline, in decimal.
	timeoutHeader = "Tether-Timeout"
	// statusHeader is "too-big" on the reply to a request whose
	// handler's reply was over MaxPayload.
	statusHeader = "Tether-Status"
	statusTooBig = "too-big"
)

// maxTimeout bounds a timeout: a longer one crosses as maxTimeout.
const maxTimeout = 24 * time.Hour

// Request sends data to the handler serving subject as a NATS request and
// waits for the reply. It returns cluster.ErrNoResponders at once when no
// subscription serves the subject (the server says so), cluster.ErrTooBig
// for data or a reply over MaxPayload, cluster.ErrClosed after Close (a
// Request in progress too), ctx's error when ctx ends before the reply
// arrives, an error wrapping cluster.ErrUnavailable while the connection is
// down, and an error for an invalid subject. The handler's context ends
// when the time left before ctx's deadline, as Request sent it, has passed.
func (b *Bus) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if err := b.check(ctx, subject, data); err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: b.reqPrefix + subject, Data: data}
	if deadline, ok := ctx.Deadline(); ok {
		left := min(max(time.Until(deadline), time.Microsecond), maxTimeout)
		msg.Header = nats.Header{timeoutHeader: []string{strconv.FormatInt(int64(left/time.Microsecond), 10)}}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.ctx, cancel)()
	reply, err := b.nc.RequestMsgWithContext(rctx, msg)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return nil, cluster.ErrNoResponders
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, cluster.ErrTooBig
	default:
		return nil, b.unavailable(ctx, err)
	}
	if reply.Header.Get(statusHeader) == statusTooBig {
		return nil, cluster.ErrTooBig
	}
	return reply.Data, nil
}

// Serve answers the Requests sent to subject with handle, each on a
// goroutine of its own, from the moment the server has the subscription,
// before Serve returns. It returns cluster.ErrServed when b serves subject
// already, cluster.ErrClosed after Close, ctx's error when ctx ends before
// the server confirmed, an error wrapping cluster.ErrUnavailable while the
// connection is down, and an error for an invalid subject.
func (b *Bus) Serve(ctx context.Context, subject string, handle func(ctx context.Context, data []byte) []byte) (cluster.Subscription, error) {
	if err := b.check(ctx, subject, nil); err != nil {
		return nil, err
	}
	natsSubject := b.reqPrefix + subject
	sctx, cancel := context.WithCancel(b.ctx)
	srv := &server{bus: b, subject: natsSubject, handle: handle, ctx: sctx, cancel: cancel}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		cancel()
		return nil, cluster.ErrClosed
	case b.servers[natsSubject] != nil:
		b.mu.Unlock()
		cancel()
		return nil, cluster.ErrServed
	}
	sub, err := b.nc.Subscribe(natsSubject, srv.receive)
	if err != nil {
		b.mu.Unlock()
		cancel()
		return nil, b.unavailable(ctx, err)
	}
	srv.sub = sub
	b.servers[natsSubject] = srv
	b.mu.Unlock()
	if err := b.flush(ctx); err != nil {
		srv.Close()
		return nil, err
	}
	return srv, nil
}

// server is what Serve returns.
type server struct {
	bus     *Bus
	subject string
	sub     *nats.Subscription
	handle  func(ctx context.Context, data []byte) []byte
	ctx     context.Context // ends when the server or the bus closes
	cancel  context.CancelFunc
}

// Close stops serving: the contexts of the handlers in progress end, and
// once the server has confirmed (within 5 s), Requests to the subject get
// cluster.ErrNoResponders unless another bus serves it. It does not wait
// for the handlers, so handle may call it.
func (srv *server) Close() error {
	b := srv.bus
	b.mu.Lock()
	if b.servers[srv.subject] != srv {
		b.mu.Unlock()
		return nil
	}
	delete(b.servers, srv.subject)
	srv.sub.Unsubscribe()
	b.mu.Unlock()
	srv.cancel()
	b.confirm()
	return nil
}

// receive starts the handler's call for a request on a goroutine of its
// own; nats.go calls it on the subscription's goroutine.
func (srv *server) receive(m *nats.Msg) {
	b := srv.bus
	var timeout time.Duration
	if v := m.Header.Get(timeoutHeader); v != "" {
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil || us <= 0 || us > int64(maxTimeout/time.Microsecond) {
			b.dropMalformed(m, "bad "+timeoutHeader+" header")
			return
		}
		timeout = time.Duration(us) * time.Microsecond
	}
	if m.Reply == "" {
		b.dropMalformed(m, "no reply subject")
		return
	}
	if srv.ctx.Err() != nil || !b.enter() {
		return
	}
	go func() {
		defer b.wg.Done()
		ctx, cancel := srv.ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		defer cancel()
		data := srv.handle(ctx, m.Data)
		if ctx.Err() != nil {
			return // past the requester's deadline, or the server is gone
		}
		reply := &nats.Msg{Subject: m.Reply, Data: data}
		if len(data) > b.maxPayload {
			reply = &nats.Msg{Subject: m.Reply, Header: nats.Header{statusHeader: []string{statusTooBig}}}
		}
		b.nc.PublishMsg(reply) // lost when the connection is down: the requester's context ends
	}()
}

// dropMalformed counts and logs a message on a request subject that is not
// a request.
func (b *Bus) dropMalformed(m *nats.Msg, why string) {
	b.malformed.Add(1)
	b.log.Warn("natsbus: dropped a malformed request", "subject", m.Subject, "bytes", len(m.Data), "why", why)
}
