package client_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

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
