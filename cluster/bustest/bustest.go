// Package bustest checks that a cluster.Bus keeps every promise of the
// Bus's documentation, on the engine it runs on. The implementations in
// this module run it (MemoryBus, redisbus against a real redis-server,
// natsbus against a real nats-server); so can an implementation of one's
// own:
//
//	func TestConformance(t *testing.T) {
//		bustest.Run(t, func(t *testing.T) cluster.Bus {
//			return mybus.New(...)
//		})
//	}
package bustest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/cluster"
)

// Timeout bounds each check: a check that waits longer for something the
// Bus promised fails.
const Timeout = 30 * time.Second

// OrderedMessages is how many messages the ordering check publishes from
// one goroutine.
const OrderedMessages = 10000

// Run checks the Bus that connect returns, as subtests of t. Each call of
// connect must return a new connection to the same engine (what each node
// of a cluster has); Run closes every connection it gets once the subtest
// that got it ends. The subtests use subjects of their own under
// "bustest.<random>", so the engine may be shared with other work.
func Run(t *testing.T, connect func(t *testing.T) cluster.Bus) {
	s := &suite{connect: connect, prefix: "bustest." + randomID()}
	for _, c := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"PublishFanOut", s.publishFanOut},
		{"PublishOrder", s.publishOrder},
		{"PublishOrderPerPublisher", s.publishOrderPerPublisher},
		{"SubscribeActiveOnReturn", s.subscribeActiveOnReturn},
		{"SubscriptionClose", s.subscriptionClose},
		{"DataNotKept", s.dataNotKept},
		{"RequestReply", s.requestReply},
		{"RequestsCorrelated", s.requestsCorrelated},
		{"HandlersConcurrent", s.handlersConcurrent},
		{"NoResponders", s.noResponders},
		{"RequestDeadline", s.requestDeadline},
		{"RequestContextEnds", s.requestContextEnds},
		{"HandlerContextEndsWithSubscription", s.handlerContextEnds},
		{"TooBig", s.tooBig},
		{"Served", s.served},
		{"InvalidSubject", s.invalidSubject},
		{"Closed", s.closed},
		{"CloseRemovesHandlers", s.closeRemovesHandlers},
		{"CloseUnderLoad", s.closeUnderLoad},
	} {
		t.Run(c.name, c.fn)
	}
}

// suite holds what the checks share.
type suite struct {
	connect func(t *testing.T) cluster.Bus
	prefix  string
}

// randomID returns 8 random hex digits.
func randomID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// conn returns a new connection, closed when t ends.
func (s *suite) conn(t *testing.T) cluster.Bus {
	t.Helper()
	bus := s.connect(t)
	t.Cleanup(func() { bus.Close() })
	return bus
}

// subject returns a subject of t's own.
func (s *suite) subject(t *testing.T, name string) string {
	return s.prefix + "." + randomID() + "." + name
}

// context returns a context that ends after Timeout or when t ends.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// subscribe subscribes bus to subject with an fn that sends a copy of each
// message to the channel returned (of capacity n; fn blocks when it is
// full).
func subscribe(t *testing.T, ctx context.Context, bus cluster.Bus, subject string, n int) (<-chan []byte, cluster.Subscription) {
	t.Helper()
	ch := make(chan []byte, n)
	sub, err := bus.Subscribe(ctx, subject, func(data []byte) { ch <- bytes.Clone(data) })
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", subject, err)
	}
	t.Cleanup(func() { sub.Close() })
	return ch, sub
}

// receive waits for a message on ch within ctx.
func receive(t *testing.T, ctx context.Context, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case data := <-ch:
		return data
	case <-ctx.Done():
		t.Fatalf("no message within %v", Timeout)
		return nil
	}
}

// serve makes bus serve subject with handle.
func serve(t *testing.T, ctx context.Context, bus cluster.Bus, subject string, handle func(ctx context.Context, data []byte) []byte) cluster.Subscription {
	t.Helper()
	sub, err := bus.Serve(ctx, subject, handle)
	if err != nil {
		t.Fatalf("Serve(%q): %v", subject, err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// publish publishes data or fails t.
func publish(t *testing.T, ctx context.Context, bus cluster.Bus, subject string, data []byte) {
	t.Helper()
	if err := bus.Publish(ctx, subject, data); err != nil {
		t.Fatalf("Publish(%q): %v", subject, err)
	}
}

// echo is a handler that answers with the request's data.
func echo(_ context.Context, data []byte) []byte { return bytes.Clone(data) }

// publishFanOut: a publish reaches every subscriber of every connection,
// the publisher's own included.
func (s *suite) publishFanOut(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "fanout")
	var chans []<-chan []byte
	var conns []cluster.Bus
	for range 3 {
		bus := s.conn(t)
		conns = append(conns, bus)
		ch, _ := subscribe(t, ctx, bus, subject, 1)
		chans = append(chans, ch)
	}
	ch, _ := subscribe(t, ctx, conns[0], subject, 1) // a second subscription on one connection
	chans = append(chans, ch)
	publish(t, ctx, conns[1], subject, []byte("hello"))
	for i, ch := range chans {
		if got := receive(t, ctx, ch); string(got) != "hello" {
			t.Errorf("subscriber %d got %q, want hello", i, got)
		}
	}
}

// publishOrder: OrderedMessages published by one goroutine arrive in order,
// none lost, to a subscriber that keeps up.
func (s *suite) publishOrder(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "order")
	pub, sub := s.conn(t), s.conn(t)
	ch, _ := subscribe(t, ctx, sub, subject, OrderedMessages)
	var buf [8]byte
	for i := range OrderedMessages {
		binary.BigEndian.PutUint64(buf[:], uint64(i))
		publish(t, ctx, pub, subject, buf[:])
	}
	for i := range OrderedMessages {
		got := receive(t, ctx, ch)
		if len(got) != 8 || binary.BigEndian.Uint64(got) != uint64(i) {
			t.Fatalf("message %d is %x, want %d", i, got, i)
		}
	}
}

// publishOrderPerPublisher: several goroutines publishing at once on
// several connections; each one's messages arrive in the order it
// published them.
func (s *suite) publishOrderPerPublisher(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "perpublisher")
	const publishers, each = 4, 1000
	sub := s.conn(t)
	ch, _ := subscribe(t, ctx, sub, subject, publishers*each)
	conns := []cluster.Bus{s.conn(t), s.conn(t)}
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Go(func() {
			var buf [16]byte
			for i := range each {
				binary.BigEndian.PutUint64(buf[:8], uint64(p))
				binary.BigEndian.PutUint64(buf[8:], uint64(i))
				if err := conns[p%len(conns)].Publish(ctx, subject, buf[:]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	next := make([]uint64, publishers)
	for range publishers * each {
		got := receive(t, ctx, ch)
		if len(got) != 16 {
			t.Fatalf("message of %d bytes, want 16", len(got))
		}
		p, i := binary.BigEndian.Uint64(got[:8]), binary.BigEndian.Uint64(got[8:])
		if p >= publishers || i != next[p] {
			t.Fatalf("publisher %d's message %d arrived, want its message %d", p, i, next[min(p, publishers-1)])
		}
		next[p]++
	}
}

// subscribeActiveOnReturn: a message published by another connection right
// after Subscribe returned is delivered, whether Subscribe's context has a
// deadline or not.
func (s *suite) subscribeActiveOnReturn(t *testing.T) {
	ctx := testContext(t)
	pub, sub := s.conn(t), s.conn(t)
	for i := range 20 {
		subject := s.subject(t, fmt.Sprint("active", i))
		// Every other call has a context without a deadline.
		callCtx := ctx
		if i%2 == 1 {
			callCtx = context.Background()
		}
		ch, _ := subscribe(t, callCtx, sub, subject, 1)
		publish(t, callCtx, pub, subject, []byte("first"))
		if got := receive(t, ctx, ch); string(got) != "first" {
			t.Fatalf("got %q, want first", got)
		}
	}
}

// subscriptionClose: fn is not called for messages published after the
// Subscription's Close returned; Close may be called twice.
func (s *suite) subscriptionClose(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "close")
	pub, bus := s.conn(t), s.conn(t)
	closed, sub := subscribe(t, ctx, bus, subject, 10)
	if err := sub.Close(); err != nil {
		t.Fatalf("Subscription.Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Errorf("second Subscription.Close = %v, want nil", err)
	}
	open, _ := subscribe(t, ctx, bus, subject, 10)
	publish(t, ctx, pub, subject, []byte("after"))
	if got := receive(t, ctx, open); string(got) != "after" {
		t.Fatalf("open subscription got %q, want after", got)
	}
	select {
	case got := <-closed:
		t.Errorf("closed subscription got %q", got)
	default:
	}
}

// dataNotKept: the publisher and the requester may reuse their buffer
// once the call returns.
func (s *suite) dataNotKept(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "reuse")
	pub, sub := s.conn(t), s.conn(t)
	ch, _ := subscribe(t, ctx, sub, subject, 2)
	buf := []byte("AAAA")
	publish(t, ctx, pub, subject, buf)
	copy(buf, "BBBB")
	publish(t, ctx, pub, subject, buf)
	copy(buf, "CCCC")
	for _, want := range []string{"AAAA", "BBBB"} {
		if got := receive(t, ctx, ch); string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}

	reqSubject := s.subject(t, "reusereq")
	serve(t, ctx, sub, reqSubject, echo)
	for _, want := range []string{"DDDD", "EEEE"} {
		copy(buf, want)
		reply, err := pub.Request(ctx, reqSubject, buf)
		if err != nil || string(reply) != want {
			t.Fatalf("Request = %q, %v; want %q", reply, err, want)
		}
	}
}

// requestReply: a Request gets the reply of the handler another connection
// serves, an empty reply included, with or without a deadline; the
// requester's own handlers serve it too.
func (s *suite) requestReply(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "echo")
	req, srv := s.conn(t), s.conn(t)
	serve(t, ctx, srv, subject, echo)
	for _, data := range []string{"ping", ""} {
		reply, err := req.Request(ctx, subject, []byte(data))
		if err != nil || string(reply) != data {
			t.Errorf("Request(%q) = %q, %v; want %q", data, reply, err, data)
		}
	}
	// A context without a deadline, for Serve and for Request (whose
	// handler then has no deadline either).
	noDeadline := s.subject(t, "nodeadline")
	serve(t, context.Background(), srv, noDeadline, func(ctx context.Context, data []byte) []byte {
		if _, ok := ctx.Deadline(); ok {
			return []byte("a deadline")
		}
		return []byte("none")
	})
	if reply, err := req.Request(context.Background(), noDeadline, nil); err != nil || string(reply) != "none" {
		t.Errorf("Request without a deadline = %q, %v; want the handler to have none", reply, err)
	}
	emptySubject := s.subject(t, "empty")
	serve(t, ctx, srv, emptySubject, func(context.Context, []byte) []byte { return nil })
	if reply, err := req.Request(ctx, emptySubject, []byte("x")); err != nil || len(reply) != 0 {
		t.Errorf("Request answered nil = %q, %v; want an empty reply", reply, err)
	}
	ownSubject := s.subject(t, "own")
	serve(t, ctx, req, ownSubject, echo)
	if reply, err := req.Request(ctx, ownSubject, []byte("self")); err != nil || string(reply) != "self" {
		t.Errorf("Request to a handler of its own = %q, %v; want self", reply, err)
	}
}

// requestsCorrelated: many Requests at once from several goroutines and
// connections each get their own reply.
func (s *suite) requestsCorrelated(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "many")
	srv := s.conn(t)
	serve(t, ctx, srv, subject, echo)
	conns := []cluster.Bus{s.conn(t), s.conn(t)}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			want := fmt.Sprint("request ", i)
			reply, err := conns[i%2].Request(ctx, subject, []byte(want))
			if err != nil || string(reply) != want {
				errs <- fmt.Errorf("Request(%q) = %q, %v", want, reply, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// handlersConcurrent: a handler that waits does not hold up the next
// request to the same subject.
func (s *suite) handlersConcurrent(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "slow")
	req, srv := s.conn(t), s.conn(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	serve(t, ctx, srv, subject, func(ctx context.Context, data []byte) []byte {
		if string(data) == "slow" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return bytes.Clone(data)
	})
	slow := make(chan error, 1)
	go func() {
		_, err := req.Request(ctx, subject, []byte("slow"))
		slow <- err
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the slow request never reached its handler")
	}
	if reply, err := req.Request(ctx, subject, []byte("fast")); err != nil || string(reply) != "fast" {
		t.Errorf("Request beside a waiting handler = %q, %v; want fast", reply, err)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Errorf("slow Request: %v", err)
	}
}

// noResponders: a Request to a subject nobody serves returns
// ErrNoResponders without waiting for its context.
func (s *suite) noResponders(t *testing.T) {
	ctx := testContext(t)
	bus := s.conn(t)
	if _, err := bus.Request(ctx, s.subject(t, "nobody"), []byte("x")); !errors.Is(err, cluster.ErrNoResponders) {
		t.Errorf("Request to nobody = %v, want ErrNoResponders", err)
	}
	// A subscriber is not a handler.
	subject := s.subject(t, "subscribed")
	subscribe(t, ctx, bus, subject, 1)
	if _, err := bus.Request(ctx, subject, []byte("x")); !errors.Is(err, cluster.ErrNoResponders) {
		t.Errorf("Request to a subject with a subscriber and no handler = %v, want ErrNoResponders", err)
	}
}

// requestDeadline: the handler's context carries the requester's deadline,
// late by at most the time the request spent in transit (an engine may
// carry the time remaining, so that clocks need not agree).
func (s *suite) requestDeadline(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "deadline")
	req, srv := s.conn(t), s.conn(t)
	serve(t, ctx, srv, subject, func(ctx context.Context, data []byte) []byte {
		d, ok := ctx.Deadline()
		if !ok {
			return []byte("none")
		}
		return fmt.Append(nil, d.UnixNano())
	})
	want := time.Now().Add(Timeout / 2)
	reqCtx, cancel := context.WithDeadline(ctx, want)
	defer cancel()
	start := time.Now()
	reply, err := req.Request(reqCtx, subject, nil)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	var got int64
	if _, err := fmt.Sscan(string(reply), &got); err != nil {
		t.Fatalf("the handler's context has no deadline (%q)", reply)
	}
	if diff := time.Duration(got - want.UnixNano()); diff < -time.Millisecond || diff > elapsed+time.Millisecond {
		t.Errorf("handler's deadline is %v off the requester's; want within [-1ms, %v]", diff, elapsed+time.Millisecond)
	}
}

// requestContextEnds: a Request whose context ends before the reply
// returns the context's error.
func (s *suite) requestContextEnds(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "never")
	req, srv := s.conn(t), s.conn(t)
	serve(t, ctx, srv, subject, func(ctx context.Context, data []byte) []byte {
		<-ctx.Done()
		return nil
	})
	reqCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := req.Request(reqCtx, subject, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Request unanswered before its deadline = %v, want context.DeadlineExceeded", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := req.Request(cancelled, subject, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Request with a cancelled context = %v, want context.Canceled", err)
	}
}

// handlerContextEnds: closing the Subscription that Serve returned ends
// the contexts of the handlers in progress, and so does closing the bus.
func (s *suite) handlerContextEnds(t *testing.T) {
	ctx := testContext(t)
	req := s.conn(t)
	for _, closeBus := range []bool{false, true} {
		subject := s.subject(t, "ends")
		srv := s.conn(t)
		entered, ended := make(chan struct{}), make(chan struct{})
		sub := serve(t, ctx, srv, subject, func(hctx context.Context, data []byte) []byte {
			close(entered)
			select {
			case <-hctx.Done():
				close(ended)
			case <-ctx.Done():
			}
			return nil
		})
		reqCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			req.Request(reqCtx, subject, nil)
		}()
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("the request never reached its handler")
		}
		if closeBus {
			srv.Close()
		} else {
			sub.Close()
		}
		select {
		case <-ended:
		case <-ctx.Done():
			t.Fatalf("closing the %s did not end the handler's context", map[bool]string{false: "Subscription", true: "bus"}[closeBus])
		}
		cancel()
		<-done
	}
}

// tooBig: data of MaxPayload bytes crosses the bus both ways; one byte
// more gets ErrTooBig, from Publish, from Request, and for a reply.
func (s *suite) tooBig(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "big")
	pub, sub := s.conn(t), s.conn(t)
	limit := pub.MaxPayload()
	if limit <= 0 {
		t.Fatalf("MaxPayload() = %d", limit)
	}
	ch, _ := subscribe(t, ctx, sub, subject, 1)
	full := bytes.Repeat([]byte{'x'}, limit)
	publish(t, ctx, pub, subject, full)
	if got := receive(t, ctx, ch); !bytes.Equal(got, full) {
		t.Errorf("a message of MaxPayload bytes arrived with %d bytes", len(got))
	}
	if err := pub.Publish(ctx, subject, make([]byte, limit+1)); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Publish of MaxPayload+1 bytes = %v, want ErrTooBig", err)
	}

	reqSubject := s.subject(t, "bigreq")
	serve(t, ctx, sub, reqSubject, func(_ context.Context, data []byte) []byte {
		if len(data) == 1 {
			return make([]byte, limit+1)
		}
		return bytes.Clone(data)
	})
	if reply, err := pub.Request(ctx, reqSubject, full); err != nil || !bytes.Equal(reply, full) {
		t.Errorf("Request of MaxPayload bytes = %d bytes, %v; want them echoed", len(reply), err)
	}
	if _, err := pub.Request(ctx, reqSubject, make([]byte, limit+1)); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Request of MaxPayload+1 bytes = %v, want ErrTooBig", err)
	}
	if _, err := pub.Request(ctx, reqSubject, []byte{1}); !errors.Is(err, cluster.ErrTooBig) {
		t.Errorf("Request answered with MaxPayload+1 bytes = %v, want ErrTooBig", err)
	}
}

// served: one handler per subject per bus; after its Subscription closes
// the subject may be served again.
func (s *suite) served(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "served")
	bus := s.conn(t)
	sub := serve(t, ctx, bus, subject, echo)
	if _, err := bus.Serve(ctx, subject, echo); !errors.Is(err, cluster.ErrServed) {
		t.Errorf("second Serve = %v, want ErrServed", err)
	}
	sub.Close()
	serve(t, ctx, bus, subject, echo)
	if reply, err := s.conn(t).Request(ctx, subject, []byte("again")); err != nil || string(reply) != "again" {
		t.Errorf("Request to a subject served again = %q, %v", reply, err)
	}
}

// invalidSubject: every method given a subject that breaks the rules
// returns an error.
func (s *suite) invalidSubject(t *testing.T) {
	ctx := testContext(t)
	bus := s.conn(t)
	for _, subject := range []string{"", "a..b", ".a", "a.", "a b", "a*", "a>", "é"} {
		if err := bus.Publish(ctx, subject, nil); err == nil {
			t.Errorf("Publish(%q) = nil, want an error", subject)
		}
		if _, err := bus.Subscribe(ctx, subject, func([]byte) {}); err == nil {
			t.Errorf("Subscribe(%q) = nil, want an error", subject)
		}
		if _, err := bus.Request(ctx, subject, nil); err == nil {
			t.Errorf("Request(%q) = nil, want an error", subject)
		}
		if _, err := bus.Serve(ctx, subject, echo); err == nil {
			t.Errorf("Serve(%q) = nil, want an error", subject)
		}
	}
}

// closed: after Close every method returns ErrClosed, a Request in
// progress returns ErrClosed, and Close may be called twice.
func (s *suite) closed(t *testing.T) {
	ctx := testContext(t)
	subject := s.subject(t, "closed")
	bus, srv := s.conn(t), s.conn(t)
	entered := make(chan struct{})
	serve(t, ctx, srv, subject, func(hctx context.Context, data []byte) []byte {
		close(entered)
		select {
		case <-hctx.Done():
		case <-ctx.Done():
		}
		return nil
	})
	pending := make(chan error, 1)
	go func() {
		_, err := bus.Request(ctx, subject, nil)
		pending <- err
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the request never reached its handler")
	}
	if err := bus.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-pending:
		if !errors.Is(err, cluster.ErrClosed) {
			t.Errorf("Request in progress at Close = %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not end a Request in progress")
	}
	if err := bus.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := bus.Publish(ctx, subject, nil); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := bus.Subscribe(ctx, subject, func([]byte) {}); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if _, err := bus.Request(ctx, subject, nil); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Request after Close = %v, want ErrClosed", err)
	}
	if _, err := bus.Serve(ctx, subject, echo); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Serve after Close = %v, want ErrClosed", err)
	}
}

// closeRemovesHandlers: once a bus's Close (or a Serve's Subscription's
// Close) has returned, Requests to its subjects get ErrNoResponders and
// its subscribers get nothing more.
func (s *suite) closeRemovesHandlers(t *testing.T) {
	ctx := testContext(t)
	req := s.conn(t)

	subject := s.subject(t, "unserved")
	srv := s.conn(t)
	sub := serve(t, ctx, srv, subject, echo)
	if _, err := req.Request(ctx, subject, nil); err != nil {
		t.Fatalf("Request before Close: %v", err)
	}
	sub.Close()
	if _, err := req.Request(ctx, subject, nil); !errors.Is(err, cluster.ErrNoResponders) {
		t.Errorf("Request after the Subscription's Close = %v, want ErrNoResponders", err)
	}

	subject = s.subject(t, "gone")
	pubSubject := s.subject(t, "gonepub")
	node := s.conn(t)
	serve(t, ctx, node, subject, echo)
	gone, _ := subscribe(t, ctx, node, pubSubject, 10)
	live, _ := subscribe(t, ctx, req, pubSubject, 10)
	if err := node.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := req.Request(ctx, subject, nil); !errors.Is(err, cluster.ErrNoResponders) {
		t.Errorf("Request to a closed bus's subject = %v, want ErrNoResponders", err)
	}
	publish(t, ctx, req, pubSubject, []byte("after"))
	receive(t, ctx, live)
	select {
	case got := <-gone:
		t.Errorf("a closed bus's subscriber got %q", got)
	default:
	}
}

// closeUnderLoad: Close while other goroutines publish, subscribe, serve
// and request on the bus ends each of their calls with success or
// ErrClosed (or ErrServed and ErrNoResponders where they apply), and
// none of fn or handle runs once Close has returned.
func (s *suite) closeUnderLoad(t *testing.T) {
	ctx := testContext(t)
	bus, other := s.conn(t), s.conn(t)
	subject := s.subject(t, "load")
	serve(t, ctx, other, subject, echo)
	var closed atomic.Bool
	var late atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	loop := func(call func(i int) error, allowed ...error) {
		wg.Go(func() {
			for i := 0; ; i++ {
				err := call(i)
				if errors.Is(err, cluster.ErrClosed) {
					return
				}
				ok := err == nil
				for _, a := range allowed {
					ok = ok || errors.Is(err, a)
				}
				if !ok {
					errs <- err
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	count := func([]byte) {
		if closed.Load() {
			late.Add(1)
		}
	}
	loop(func(int) error { return bus.Publish(ctx, subject, []byte("x")) })
	loop(func(int) error { _, err := bus.Request(ctx, subject, []byte("x")); return err })
	loop(func(i int) error {
		sub, err := bus.Subscribe(ctx, subject, count)
		if err == nil && i%2 == 0 {
			sub.Close()
		}
		return err
	})
	loop(func(i int) error {
		sub, err := bus.Serve(ctx, s.subject(t, "loadserve"), func(context.Context, []byte) []byte {
			count(nil)
			return nil
		})
		if err == nil {
			sub.Close()
		}
		return err
	}, cluster.ErrServed)
	// Let the loops run a little: until the bus has delivered to fn.
	first := make(chan struct{})
	sub, err := bus.Subscribe(ctx, subject, func([]byte) {
		select {
		case first <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	select {
	case <-first:
	case <-ctx.Done():
		t.Fatal("no message reached a subscriber")
	}
	if err := bus.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed.Store(true)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call ended with %v, want nil or ErrClosed", err)
	}
	if n := late.Load(); n > 0 {
		t.Errorf("fn or handle ran %d times after Close returned", n)
	}
}
