package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/cluster/redisstate"
	"github.com/tetherkit/tether/internal/busdial"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/wire"
)

// tickEvery is the pace of the ticker of TestDurableKills: steady, light
// beside the bursts.
const tickEvery = 10 * time.Millisecond

// ticker publishes "1", "2"... to the topic "ticks" of a durable cluster
// from a node of the test's own on the cluster's bus, never killed, with the
// cluster's topic history; its subscriber, a durable session of the
// cluster whose owner is killed, must receive each once, in order.
type ticker struct {
	t    *testing.T
	e    *env
	node *cluster.Node
	sub  *conn
	n    atomic.Int64 // published so far
	got  chan error   // the subscriber's verdict, once it read "end"
	tl   *tally
}

// startTicker joins the ticker's node to e's bus and subscribes a session
// of e's (on websocket, through nginx) to "ticks".
func startTicker(t *testing.T, e *env, rdb *redis.Client) *ticker {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	bus, closeBus, err := busdial.Dial(e.engine.URL(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeBus)
	history, err := redisstate.NewHistory(rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	node, err := cluster.NewNode(bus, &cluster.NodeOptions{Name: "ticker", Logger: logger, History: history})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	tk := &ticker{t: t, e: e, node: node, sub: dial(t, e.url, "websocket"), got: make(chan error, 1), tl: &tally{}}
	subscribe(t, tk.sub, "ticks")
	go func() { tk.got <- tk.receive() }()
	return tk
}

// receive counts the ticks the subscriber receives until "end".
func (tk *ticker) receive() error {
	ctx, cancel := context.WithTimeout(context.Background(), killsBound+stallBound)
	defer cancel()
	for {
		m, err := tk.sub.c.Recv(ctx)
		if err != nil {
			return err
		}
		if string(m.Data) == "end" {
			return nil
		}
		i, _ := strconv.Atoi(string(m.Data))
		tk.tl.add(i)
	}
}

// publish publishes the next k ticks, one every tickEvery.
func (tk *ticker) publish(ctx context.Context, k int) error {
	for range k {
		i := tk.n.Add(1)
		if err := tk.node.Broker().Publish(ctx, "ticks", wire.Message{Type: wire.Text, Data: []byte(strconv.FormatInt(i, 10))}, nil); err != nil {
			return fmt.Errorf("tick %d: %w", i, err)
		}
		select {
		case <-time.After(tickEvery):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// run publishes ticks until stop ends; then it kills the owner of the
// subscriber once more, publishes through the time no node holds it and
// until it is taken over, and a few more; then "end". It returns the
// kills it made.
func (tk *ticker) run(stop context.Context, store *redisstate.Store) (kills []kill, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), killsBound)
	defer cancel()
	for stop.Err() == nil {
		if err := tk.publish(ctx, 1); err != nil {
			return kills, err
		}
	}
	id := tk.sub.c.ID()
	_, epoch, err := store.Load(ctx, id)
	if err != nil {
		return kills, err
	}
	owner, err := store.Owner(ctx, id)
	if err != nil {
		return kills, err
	}
	i := slices.IndexFunc(tk.e.nodes, func(p *clustertest.NodeProcess) bool { return p.Echo == owner })
	if i < 0 {
		return kills, fmt.Errorf("the owner of the ticks' subscriber is %q, no node of the cluster", owner)
	}
	tk.e.nodes[i].Kill()
	kills = append(kills, kill{node: owner, name: tk.e.nodes[i].Name, at: time.Now(), of: []string{"ticks"}})
	if err := tk.e.restart(i); err != nil {
		return kills, err
	}
	// No node holds the subscriber until the dead owner's lease lapses.
	if err := tk.publish(ctx, int(durableLeaseTTL/tickEvery)); err != nil {
		return kills, err
	}
	for {
		_, now, err := store.Load(ctx, id)
		if err != nil && !errors.Is(err, cluster.ErrStateUnavailable) {
			return kills, err
		}
		if now > epoch {
			break
		}
		if err := tk.publish(ctx, 1); err != nil {
			return kills, err
		}
	}
	if err := tk.publish(ctx, 50); err != nil {
		return kills, err
	}
	return kills, tk.node.Broker().Publish(ctx, "ticks", wire.Message{Type: wire.Text, Data: []byte("end")}, nil)
}

// check waits for the subscriber's "end" and fails the test unless it
// received every tick once, in order, in the session it began with.
func (tk *ticker) check(bus string) {
	t := tk.t
	select {
	case err := <-tk.got:
		if err != nil {
			t.Errorf("ticks: the subscriber: %v", err)
			return
		}
	case <-time.After(stallBound):
		t.Errorf("ticks: the subscriber did not receive \"end\" within %v", stallBound)
		return
	}
	tl := tk.tl
	tl.n = int(tk.n.Load())
	t.Logf("%s ticks: published %d, received %d, lost %d, duplicated %d, reordered %d, resumes %d", bus, tl.n, tl.received, tl.lost(), tl.dup, tl.reordered, tk.sub.resumes.Load())
	if !tl.exact() {
		t.Errorf("ticks: received %d of %d, lost %d, duplicated %d, reordered %d; want each once, in order", tl.distinct, tl.n, tl.lost(), tl.dup, tl.reordered)
	}
	if rs := tk.sub.reconnected(); len(rs) > 0 || tk.sub.c.ID() != tk.sub.firstID {
		t.Errorf("ticks: new sessions %v; want the first one throughout", rs)
	}
}
