package conformance_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/cluster"
	"github.com/tetherkit/tether/internal/clustertest"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestOutsideCluster checks what section 11 says a client may observe of
// a cluster, on two nodes asked directly: session ids, relayed requests,
// ids that name no node, and an owner that is gone.
func TestOutsideCluster(t *testing.T) {
	echo := &tether.Callbacks{Message: func(s *session.Session, m wire.Message) { s.Send(s.Context(), m) }}
	cl := clustertest.Start(t, 2, echo, &clustertest.Options{Node: &cluster.NodeOptions{OwnerGoneAfter: 500 * time.Millisecond}})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	owner := &outsideClient{t: t, base: cl.Nodes[0].URL, hc: &http.Client{Transport: tr}}
	other := &outsideClient{t: t, base: cl.Nodes[1].URL, hc: owner.hc}
	s := owner.negotiate()
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{22}$`).MatchString(s.Session) {
		t.Errorf("session id %q; section 11 says 8 base64url characters, a dot, then 22", s.Session)
	}
	// Relayed: a send and a poll on the other node.
	if a := other.send(s, "&seq=1", "m1", "b\x00\xff"); a.status != 204 {
		t.Fatalf("send through the other node: %v", a)
	}
	if a := other.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil); a.body != "2:m13:b\x00\xff" {
		t.Errorf("poll through the other node: %v", a)
	}
	// Every transport, in both framings, through the node that does not
	// hold the session.
	for _, v := range outsideVariants {
		s := owner.negotiate()
		d := other.attachVariant(v, s, "&received=0")
		up := &outsideUp{c: other, s: s, next: 1}
		if w, ok := d.(*wsDown); ok {
			up.w = w
		}
		up.frames("mrelayed é", "b\x00\x01")
		for _, want := range []outsideMessage{{data: "relayed é"}, {binary: true, data: "\x00\x01"}} {
			if got, _ := decodeMessage(t, nextFrame(t, d, "ha")); got != want {
				t.Errorf("%v through the other node: %q, want %q", v, got.data, want.data)
			}
		}
		d.stop()
	}
	wrong := outsideSession{Session: s.Session, Token: "AAAAAAAAAAAAAAAAAAAAAA"}
	wantError(t, "a wrong token on the other node", other.request("GET", "longpoll?"+wrong.auth()+"&received=0", nil, nil), 404, "unknown session")
	for _, id := range []string{"short.AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAA!.AAAAAAAAAAAAAAAAAAAAAA", ".AAAAAAAAAAAAAAAAAAAAAA"} {
		bad := outsideSession{Session: id, Token: s.Token}
		wantError(t, "an id "+id[:8]+" that names no node", other.request("GET", "longpoll?"+bad.auth()+"&received=0", nil, nil), 404, "unknown session")
	}
	// A forged id, naming a node that never existed: as an owner gone.
	forged := outsideSession{Session: "Zm9yZ2Vk." + s.Session[9:], Token: s.Token}
	ownerGone := func(what string, s outsideSession) {
		t.Helper()
		var a outsideAnswer
		for range 100 {
			if a = other.request("GET", "longpoll?"+s.auth()+"&received=2", nil, nil); a.status != 503 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if a.status != 200 || a.body != "16:c4006 owner gone" {
			t.Errorf("%s: a poll answered %v; section 11 says 200 with only c4006 owner gone", what, a)
		}
		wantError(t, what+": a send", other.send(s, "&seq=3", "m3"), 503, "try again")
	}
	ownerGone("a forged id", forged)
	cl.Kill(cl.Nodes[0])
	ownerGone("a killed owner", s)
	// A probe is answered as for a live session (attachSSE checks its
	// prelude and first heartbeat).
	other.attach("sse", s, "&received=2&probe=1").stop()
	d := other.attach("websocket", s, "&received=2&seq=3")
	if f, err := d.next(); err != nil || f != "c4006 owner gone" {
		t.Errorf("WebSocket attach after the owner went: %q %v", f, err)
	}
	if _, err := d.next(); err != io.EOF || d.(*wsDown).closeCode != 4006 {
		t.Errorf("WebSocket close %d (%v), section 11 says 4006", d.(*wsDown).closeCode, err)
	}
}

// outsideBusDown is a node's bus connection that can be cut: while down,
// every request over it fails as when the bus cannot be reached.
type outsideBusDown struct {
	cluster.Bus
	down *atomic.Bool
}

func (b outsideBusDown) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if b.down.Load() {
		return nil, fmt.Errorf("the test cut the bus: %w", cluster.ErrUnavailable)
	}
	return b.Bus.Request(ctx, subject, data)
}

// TestOutsideClusterBusDown checks section 11's bus down: a node that
// cannot reach the owner answers 503 try again and changes nothing;
// requests that reach the owner are unaffected; once the bus is back, the
// session goes on.
func TestOutsideClusterBusDown(t *testing.T) {
	var down atomic.Bool
	echo := &tether.Callbacks{Message: func(s *session.Session, m wire.Message) { s.Send(s.Context(), m) }}
	cl := clustertest.Start(t, 2, echo, &clustertest.Options{Bus: func(b cluster.Bus) cluster.Bus { return outsideBusDown{b, &down} }})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	owner := &outsideClient{t: t, base: cl.Nodes[0].URL, hc: &http.Client{Transport: tr}}
	other := &outsideClient{t: t, base: cl.Nodes[1].URL, hc: owner.hc}
	s := owner.negotiate()
	if a := other.send(s, "&seq=1", "m1"); a.status != 204 {
		t.Fatal(a)
	}
	down.Store(true)
	wantError(t, "a send through the other node, bus down", other.send(s, "&seq=2", "m2"), 503, "try again")
	wantError(t, "a poll through the other node, bus down", other.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil), 503, "try again")
	wantError(t, "a WebSocket through the other node, bus down", other.refusedWebSocket(s, "&received=0&seq=2", nil), 503, "try again")
	if a := owner.request("GET", "longpoll?"+s.auth()+"&received=0", nil, nil); a.body != "2:m1" {
		t.Errorf("a poll on the owner, bus down: %v; section 11 says unaffected", a)
	}
	down.Store(false)
	if a := other.send(s, "&seq=2", "m2"); a.status != 204 {
		t.Fatalf("a send once the bus is back: %v", a)
	}
	if a := other.request("GET", "longpoll?"+s.auth()+"&received=1", nil, nil); a.body != "2:m2" {
		t.Errorf("a poll once the bus is back: %v; section 11 says the session goes on where it left off", a)
	}
}
