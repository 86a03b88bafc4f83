package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The budget attack: many clients flood an echo server and never read nor
// acknowledge, or flood a server whose application does not read, while
// three counted sessions exchange messages. Options.MaxQueuedBytesTotal
// must bound what the server holds near the budget, not at
// sessions × MaxQueuedBytes, and close (or stop reading from) the flooding
// sessions as documented, while the counted ones keep their exact counts.

const (
	attackBudget  = 8 << 20  // Options.MaxQueuedBytesTotal
	attackMessage = 16 << 10 // the flood's message size, and MaxMessageBytes
	attackEach    = 5 << 20  // bytes each flooding client sends: more than MaxQueuedBytes
	// attackConnCost bounds what one flooding session costs besides its
	// queues, in the heap of this process (which holds both ends): the
	// session, the server's WebSocket connection and the client's, with
	// their buffers, and the frames the server's write has collected
	// (64 KiB and a message) while a client that reads nothing holds it
	// up.
	attackConnCost = 192 << 10
)

// heapLive returns the live heap after a full collection, as runtime/metrics
// measures it.
func heapLive() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// budgetEnv is a server under the budget attack: echoing sessions, and
// sessions whose application reads nothing (negotiated with X-Unread).
type budgetEnv struct {
	*badEnv
	mu     sync.Mutex
	unread []*session.Session // sessions whose application reads nothing
	ends   map[string]error   // session id -> the error it ended with
	ended  chan struct{}      // a session's handler returned
}

func newBudgetEnv(t *testing.T) *budgetEnv {
	e := &budgetEnv{ends: map[string]error{}, ended: make(chan struct{}, 1024)}
	h := tether.HandlerFunc(func(s *session.Session) {
		if s.Request().Header.Get("X-Unread") != "" {
			e.mu.Lock()
			e.unread = append(e.unread, s)
			e.mu.Unlock()
			<-s.Context().Done()
		} else {
			echo(s)
		}
		e.mu.Lock()
		e.ends[s.ID()] = s.Err()
		e.mu.Unlock()
		e.ended <- struct{}{}
	})
	e.badEnv = newMemEnv(t, h, tether.Options{
		MaxQueuedBytesTotal: attackBudget,
		MaxMessageBytes:     attackMessage,
		// Heartbeats as in the attack table's server.
		HeartbeatInterval: time.Second,
	})
	return e
}

// flood negotiates n sessions (with X-Unread when unread), attaches a
// WebSocket to each and sends attackEach bytes of messages on each, reading
// nothing. It returns the sessions' ids and the connections, and a
// function that waits until every write has been made or has failed: the
// server stops reading a session it refuses, so a write may wait until its
// connection is closed.
func (e *budgetEnv) flood(t *testing.T, n int, unread bool) ([]string, []*ws.Conn, func()) {
	t.Helper()
	var ids []string
	var conns []*ws.Conn
	for range n {
		r := e.req(t, "POST", "negotiate?v=1", "", nil)
		if unread {
			r.Header.Set("X-Unread", "1")
		}
		rs := e.negotiate(t, r)
		c, _, err := ws.DefaultDialer.Dial(e.wsURL(rs, "received=0&seq=1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ids = append(ids, rs.Session)
		conns = append(conns, c)
	}
	msg := bytes.Repeat([]byte("f"), attackMessage)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetWriteDeadline(time.Now().Add(time.Minute))
			for range attackEach / attackMessage {
				if c.WriteMessage(ws.BinaryMessage, msg) != nil {
					return
				}
			}
		})
	}
	return ids, conns, wg.Wait
}

// fairShare is what Options.MaxQueuedBytesTotal documents as a queue's
// fair share with the sessions the server holds now.
func (e *budgetEnv) fairShare() int64 {
	return max(attackBudget/int64(2*max(e.srv.Sessions(), 1)), session.MinFairShare)
}

// TestQueueBudgetAttack floods a server whose budget is attackBudget from
// many WebSocket clients, first as echoes the clients never read nor
// acknowledge, then as messages an application never reads, while three
// counted sessions exchange messages: the live heap grows by about the
// budget, not by the flood (sessions × attackEach); every echo flood ends
// with 4002, all but the few that filled their own queue while the budget
// had room with reason "queue budget exhausted"; the unread floods leave
// their sessions open, the server reading no more from them; the counted
// sessions' counts stay exact; and once every session has ended, the
// budget counts 0.
func TestQueueBudgetAttack(t *testing.T) {
	floods := 64
	if raceDetector {
		floods = 16
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newBudgetEnv(t)
	bg := e.background(t, ctx)
	// Over the budget, each queue of a flooding session may hold the
	// larger of its fair share and one message, and each session costs
	// attackConnCost besides.
	bound := func(n int) int64 {
		share := max(int64(attackBudget/(2*(n+3))), session.MinFairShare, attackMessage+session.MessageOverhead)
		return attackBudget + int64(n)*(2*share+attackConnCost)
	}

	t.Run("echoes never read", func(t *testing.T) {
		before := heapLive()
		ids, conns, written := e.flood(t, floods, false)
		for i := range ids {
			select {
			case <-e.ended:
			case <-ctx.Done():
				t.Fatalf("%d of %d flooding sessions ended", i, len(ids))
			}
		}
		growth, queued := heapLive()-before, e.srv.QueuedBytes()
		byReason := map[string]int{}
		e.mu.Lock()
		for _, id := range ids {
			var ce wire.CloseError
			if err := e.ends[id]; !errors.As(err, &ce) || ce.Code != wire.StatusSlowConsumer {
				t.Errorf("flooding session ended with %v, want 4002", err)
			}
			byReason[ce.Reason]++
		}
		e.mu.Unlock()
		t.Logf("%d clients sent %d bytes each, never reading: live heap %+d bytes, queues %d bytes (budget %d, bound %d); closes by reason %v",
			floods, attackEach, growth, queued, attackBudget, bound(floods), byReason)
		// Only a session that filled its own queue (MaxQueuedBytes) while
		// the budget had room is closed as a slow consumer of its own.
		if own := attackBudget / session.DefaultMaxQueuedBytes; byReason[session.ReasonQueueBudget] < floods-own {
			t.Errorf("%d sessions closed with reason %q, want at least %d", byReason[session.ReasonQueueBudget], session.ReasonQueueBudget, floods-own)
		}
		if queued > bound(floods) || growth > bound(floods) {
			t.Errorf("queues hold %d bytes and the live heap grew by %d, want at most %d", queued, growth, bound(floods))
		}
		for _, c := range conns {
			c.Close()
		}
		written()
	})

	t.Run("messages never read", func(t *testing.T) {
		before := heapLive()
		_, conns, written := e.flood(t, floods, true)
		// Each flooding session has had its messages taken, or holds
		// its fair share (the next message would go over): the server
		// reads no more from it.
		e.mu.Lock()
		unread := e.unread
		e.mu.Unlock()
		perMessage := uint64(attackMessage + session.MessageOverhead)
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			waiting := 0
			for _, s := range unread {
				if got := s.Received(); got < attackEach/attackMessage && int64((got+1)*perMessage) <= e.fairShare() {
					waiting++
				}
			}
			if waiting == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions below their fair share after a minute", waiting)
			}
		}
		growth, queued := heapLive()-before, e.srv.QueuedBytes()
		var received uint64
		for _, s := range unread {
			received += s.Received()
			if s.Err() != nil {
				t.Errorf("a session whose application reads nothing ended: %v", s.Err())
			}
		}
		t.Logf("%d clients sent %d bytes each to an application that reads nothing: %d messages taken, live heap %+d bytes, queues %d bytes (budget %d, bound %d)",
			floods, attackEach, received, growth, queued, attackBudget, bound(floods))
		if queued > bound(floods) || growth > bound(floods) {
			t.Errorf("queues hold %d bytes and the live heap grew by %d, want at most %d", queued, growth, bound(floods))
		}
		for _, s := range unread {
			s.Close(wire.StatusNormalClosure, "")
		}
		for _, c := range conns {
			c.Close()
		}
		written()
	})

	// The flooding sessions end once their resume window (30 s) has
	// passed without a connection; the counted ones then, with their
	// clients' close.
	for deadline := time.Now().Add(2 * time.Minute); e.srv.Sessions() > len(bg.bgs); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions two minutes after the floods", e.srv.Sessions())
		}
	}
	bg.check(t)
	for deadline := time.Now().Add(time.Minute); e.srv.Sessions() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions a minute after the counted ones closed", e.srv.Sessions())
		}
	}
	if got := e.srv.QueuedBytes(); got != 0 {
		t.Errorf("every session ended, and the budget counts %d bytes, want 0", got)
	}
}
