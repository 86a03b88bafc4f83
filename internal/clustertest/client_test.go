package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/wire"
)

// Bounds of the waits: one that ends by its bound fails the test with what
// it saw. None is a measure of speed.
const (
	dialBound = 30 * time.Second
	// stallBound is how long a phase may go without receiving anything
	// before it counts as hung.
	stallBound = 60 * time.Second
	closeBound = 15 * time.Second
)

// conn is one client session of a test, with what its hooks saw.
type conn struct {
	t         *testing.T
	transport string
	c         *client.Session
	firstID   string // the session's id at Dial

	resumes atomic.Int64 // OnResuming calls: connections lost
	failed  atomic.Int64 // OnError calls: attempts that failed (a 503 while the bus is down, say)
	sent    atomic.Int64 // messages the running phase has handed to Send

	mu         sync.Mutex
	reconnects []reconnect // guarded by mu; what OnReconnecting saw
}

// reconnect is one call of OnReconnecting: the close code, and how many
// messages of the running phase had been handed to Send by then.
type reconnect struct {
	code wire.StatusCode
	sent int
}

// dial opens a session at url on transport alone.
func dial(t *testing.T, url, transport string) *conn {
	t.Helper()
	cn := &conn{t: t, transport: transport}
	ctx, cancel := context.WithTimeout(context.Background(), dialBound)
	defer cancel()
	c, err := client.Dial(ctx, url, &client.Options{
		Transports: []string{transport},
		MinDelay:   10 * time.Millisecond,
		MaxDelay:   250 * time.Millisecond,
		Logger:     slog.New(slog.DiscardHandler),
		OnResuming: func() { cn.resumes.Add(1) },
		OnError:    func(*client.AttemptError) { cn.failed.Add(1) },
		OnReconnecting: func(ce wire.CloseError) {
			cn.mu.Lock()
			defer cn.mu.Unlock()
			cn.reconnects = append(cn.reconnects, reconnect{code: ce.Code, sent: int(cn.sent.Load())})
		},
	})
	if err != nil {
		t.Fatalf("Dial %s on %s: %v", url, transport, err)
	}
	cn.c, cn.firstID = c, c.ID()
	t.Cleanup(func() { cn.close() })
	return cn
}

// close closes the session and waits, bounded, for its end.
func (cn *conn) close() {
	cn.c.Close(wire.StatusNormalClosure, "done")
	select {
	case <-cn.c.Done():
	case <-time.After(closeBound):
		cn.t.Errorf("hang: the %s session did not end within %v of Close", cn.transport, closeBound)
	}
}

// reconnected returns what OnReconnecting saw so far.
func (cn *conn) reconnected() []reconnect {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return slices.Clone(cn.reconnects)
}

// closes formats the codes of reconnected, and end's when the session
// ended, as the report shows them.
func (cn *conn) closes(end error) string {
	var codes []string
	for _, r := range cn.reconnected() {
		codes = append(codes, strconv.Itoa(int(r.code)))
	}
	if ce := (wire.CloseError{}); errors.As(end, &ce) {
		codes = append(codes, strconv.Itoa(int(ce.Code))+" end")
	} else if end != nil {
		codes = append(codes, "end: "+end.Error())
	}
	return strings.Join(codes, " ")
}

// tally counts the messages of one phase, numbered from 1.
type tally struct {
	n         int    // messages sent
	seen      []bool // seen[i]: message i received
	distinct  int    // messages of the phase received at least once
	received  int    // messages received, of the phase or not
	dup       int    // received again, or not of the phase
	reordered int    // received after one with a higher number
	max       int    // the highest number received
}

// add counts message i (0: a message not of the phase).
func (tl *tally) add(i int) {
	tl.received++
	if i >= len(tl.seen) {
		tl.seen = append(tl.seen, make([]bool, i+1-len(tl.seen))...)
	}
	if i < 1 || tl.seen[i] {
		tl.dup++
		return
	}
	tl.seen[i] = true
	tl.distinct++
	if i < tl.max {
		tl.reordered++
	}
	tl.max = max(tl.max, i)
}

func (tl *tally) lost() int { return tl.n - tl.distinct }

// exact reports whether every message came once, in order.
func (tl *tally) exact() bool { return tl.distinct == tl.n && tl.dup == 0 && tl.reordered == 0 }

// phase is a run of echoes tagged tag.
type phase struct {
	tag string
	// n is how many messages are sent, at least: while until is set and
	// returns false, more are.
	n     int
	until func() bool
	// pace is a pause after each message sent (none when 0), so that the
	// phase lasts while something happens to the cluster.
	pace time.Duration
	// before, if set, is called before message i is sent.
	before func(ctx context.Context, i int)
	// received, if set, is called with each message received: its number,
	// 0 for a message not of the phase.
	received func(i int)
}

// echo sends "tag i" for i = 1, 2, ... (see phase) and receives the echoes
// until the last one sent is in (delivery is in order: nothing more can
// come), the session ends (returned), or nothing comes for stallBound (an
// error saying so).
func (cn *conn) echo(p phase) (*tally, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cn.sent.Store(0)
	total := make(chan int, 1) // how many were sent, once the sender is done
	var sending sync.WaitGroup
	defer func() {
		cancel()
		sending.Wait()
	}()
	sending.Go(func() {
		i := 1
		defer func() { total <- i - 1 }()
		for ; ctx.Err() == nil && (i <= p.n || p.until != nil && !p.until()); i++ {
			if p.before != nil {
				p.before(ctx, i)
			}
			send, cancel := context.WithTimeout(ctx, stallBound)
			err := cn.c.Send(send, wire.Message{Type: wire.Text, Data: []byte(p.tag + " " + strconv.Itoa(i))})
			cancel()
			if err != nil {
				if ctx.Err() == nil && send.Err() != nil {
					cn.t.Errorf("hang: %s Send(%s %d) blocked for %v", cn.transport, p.tag, i, stallBound)
				}
				return
			}
			cn.sent.Add(1)
			if p.pace > 0 {
				time.Sleep(p.pace)
			}
		}
	})
	type received struct {
		m   wire.Message
		err error
	}
	msgs := make(chan received)
	sending.Go(func() { // the reader: Recv until the session ends or ctx does
		for {
			m, err := cn.c.Recv(ctx)
			select {
			case msgs <- received{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	tl := &tally{n: -1}
	stall := time.NewTimer(stallBound)
	defer stall.Stop()
	for tl.n != 0 && (tl.n < 0 || tl.n >= len(tl.seen) || !tl.seen[tl.n]) {
		select {
		case tl.n = <-total:
		case r := <-msgs:
			if r.err != nil {
				cancel()
				if tl.n < 0 {
					tl.n = <-total
				}
				return tl, r.err
			}
			tag, num, _ := strings.Cut(string(r.m.Data), " ")
			i, _ := strconv.Atoi(num)
			if tag != p.tag {
				i = 0
			}
			tl.add(i)
			if p.received != nil {
				p.received(i)
			}
			stall.Reset(stallBound)
		case <-stall.C:
			cancel()
			if tl.n < 0 {
				tl.n = <-total
			}
			return tl, fmt.Errorf("hang: phase %s on %s: %d of %d echoes, nothing for %v, session not ended", p.tag, cn.transport, tl.distinct, tl.n, stallBound)
		}
	}
	return tl, nil
}
