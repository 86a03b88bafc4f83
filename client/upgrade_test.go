package client_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
)

// TestUpgradeLossless starts a session by default (long polling, then
// WebSocket) while the server streams 2000 messages and the client sends
// 200: each arrives exactly once, in order, across the switch.
func TestUpgradeLossless(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const down, up = 2000, 200
	url := startServer(t, func(s *session.Session) {
		go func() {
			for i := range down {
				if s.Send(s.Context(), textMsg("d"+strconv.Itoa(i+1))) != nil {
					return
				}
			}
		}()
		echo(s)
	}, nil, nil)
	var n network
	s := dial(t, ctx, url, n.options(t, ""))
	if got := s.Transport(); got != "longpoll" {
		t.Fatalf("Transport() once Dial returns = %q, want longpoll", got)
	}
	go func() {
		for i := range up {
			if s.Send(ctx, textMsg("u"+strconv.Itoa(i+1))) != nil {
				return
			}
		}
	}()
	var gotDown, gotUp int
	for gotDown+gotUp < down+up {
		m, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv() after %d and %d messages: %v", gotDown, gotUp, err)
		}
		d := string(m.Data)
		switch {
		case strings.HasPrefix(d, "d") && d == "d"+strconv.Itoa(gotDown+1):
			gotDown++
		case strings.HasPrefix(d, "u") && d == "u"+strconv.Itoa(gotUp+1):
			gotUp++
		default:
			t.Fatalf("message %q after d%d and u%d: lost, duplicated or reordered", d, gotDown, gotUp)
		}
	}
	waitTransport(t, ctx, s, "websocket")
}

// TestBackOnWebSocketAfterOutage takes the network down for a while: once
// it is back the session is on WebSocket again, with nothing lost.
func TestBackOnWebSocketAfterOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startServer(t, echo, nil, nil)
	var n network
	opts := n.options(t, "")
	failed := make(chan struct{}, 64)
	opts.OnError = func(*client.AttemptError) {
		select {
		case failed <- struct{}{}:
		default:
		}
	}
	s := dial(t, ctx, url, opts)
	waitTransport(t, ctx, s, "websocket")
	n.setDown(true)
	n.cut()
	for i := range 20 {
		if err := s.Send(ctx, textMsg(fmt.Sprint("o", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Several attempts fail while the network is down: each transport,
	// WebSocket included, has failed once before it comes back.
	for range 4 {
		select {
		case <-failed:
		case <-ctx.Done():
			t.Fatal("no attempt failed while the network was down")
		}
	}
	n.setDown(false)
	for i := range 20 {
		if m, err := s.Recv(ctx); err != nil || string(m.Data) != fmt.Sprint("o", i) {
			t.Fatalf("Recv() #%d = %q, %v; want o%d", i, m.Data, err, i)
		}
	}
	waitTransport(t, ctx, s, "websocket")
}

// TestUpgradeRetried: a proxy refuses WebSocket upgrades (502) at first, so
// the first upgrade round leaves the session on another transport; once
// the proxy lets them through, a later round (after its backoff) moves the
// session to WebSocket. Messages sent both ways all along arrive exactly
// once, in order.
func TestUpgradeRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	refused := make(chan struct{}, 1)
	lift := make(chan struct{})
	refuseFirst := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/websocket") {
				select {
				case <-lift:
				default:
					select {
					case refused <- struct{}{}:
					default:
					}
					http.Error(w, "upgrade refused for now", http.StatusBadGateway)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	url := startServer(t, echo, nil, refuseFirst)
	var n network
	opts := n.options(t, "")
	var wsFailed atomic.Int64
	opts.OnError = func(e *client.AttemptError) {
		if e.Transport == "websocket" && e.Status == http.StatusBadGateway {
			wsFailed.Add(1)
		}
	}
	s := dial(t, ctx, url, opts)

	// The client sends all along; stop, once closed, makes it send 50 more
	// and report how many it sent.
	stop, sent := make(chan struct{}), make(chan int, 1)
	go func() {
		last := -1
		for i := 1; ; i++ {
			if err := s.Send(ctx, textMsg("u"+strconv.Itoa(i))); err != nil {
				sent <- i - 1
				return
			}
			select {
			case <-stop:
				if last < 0 {
					last = i + 50
				}
			default:
			}
			if i == last {
				sent <- i
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	got := 0
	recv := func() {
		m, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv() after %d messages, on %q: %v", got, s.Transport(), err)
		}
		if want := "u" + strconv.Itoa(got+1); string(m.Data) != want {
			t.Fatalf("message %q after %d: want %q (lost, duplicated or reordered)", m.Data, got, want)
		}
		got++
	}
	select {
	case <-refused:
	case <-ctx.Done():
		t.Fatal("no WebSocket attempt reached the proxy")
	}
	close(lift)
	for s.Transport() != "websocket" {
		select {
		case <-ctx.Done():
			t.Fatalf("Transport() = %q after %d messages: not upgraded to websocket once the proxy let it through", s.Transport(), got)
		default:
		}
		recv()
	}
	close(stop)
	var total int
	select {
	case total = <-sent:
	case <-ctx.Done():
		t.Fatal("the sender did not finish")
	}
	for got < total {
		recv()
	}
	if wsFailed.Load() == 0 {
		t.Error("the refused WebSocket was not reported to OnError")
	}
	if got := s.Transport(); got != "websocket" {
		t.Errorf("Transport() at the end = %q, want websocket", got)
	}
}
