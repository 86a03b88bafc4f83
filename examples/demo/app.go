package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// The demo's session protocol. The page sends text commands; anything else
// comes back as it is, which the page uses to time round trips.
//
//	flood N SIZE  the server sends N messages of SIZE bytes as fast as the
//	              session takes them, then "flood done N"
//	stream start  the server sends "s 1", "s 2", ... every streamEvery;
//	              meanwhile the page sends "u 1", "u 2", ...
//	stream stop   the stream stops; the server answers
//	              "stream end SENT RECEIVED DISORDERED": the stream messages
//	              it sent, the page's it received, and how many of those
//	              were not the one expected next
const (
	maxFlood    = 100_000
	maxFloodLen = 64 << 10
	streamEvery = 5 * time.Millisecond
)

// serve runs one session of the demo.
func serve(s *session.Session) {
	var st *stream
	defer func() {
		if st != nil {
			st.stop()
		}
	}()
	ctx := s.Context()
	for {
		m, err := s.Recv(ctx)
		if err != nil {
			return
		}
		if m.Type != wire.Text {
			if s.Send(ctx, m) != nil {
				return
			}
			continue
		}
		text := string(m.Data)
		switch {
		case strings.HasPrefix(text, "u "):
			if st != nil {
				st.upstream(text[2:])
			}
		case strings.HasPrefix(text, "flood "):
			if err := flood(ctx, s, text); err != nil {
				return
			}
		case text == "stream start":
			if st == nil {
				st = startStream(s)
			}
		case text == "stream stop":
			if st == nil {
				continue
			}
			sent := st.stop()
			end := fmt.Sprintf("stream end %d %d %d", sent, st.received, st.disordered)
			st = nil
			if s.Send(ctx, textMsg(end)) != nil {
				return
			}
		default:
			if s.Send(ctx, m) != nil {
				return
			}
		}
	}
}

func textMsg(s string) wire.Message { return wire.Message{Type: wire.Text, Data: []byte(s)} }

// flood answers "flood N SIZE".
func flood(ctx context.Context, s *session.Session, cmd string) error {
	var n, size int
	if _, err := fmt.Sscanf(cmd, "flood %d %d", &n, &size); err != nil || n < 1 || n > maxFlood || size < 1 || size > maxFloodLen {
		return s.Send(ctx, textMsg("flood bad request"))
	}
	data := bytes.Repeat([]byte("x"), size)
	data[0] = 'f'
	for range n {
		if err := s.Send(ctx, wire.Message{Type: wire.Text, Data: data}); err != nil {
			return err
		}
	}
	return s.Send(ctx, textMsg("flood done "+strconv.Itoa(n)))
}

// stream is a running "stream start": a goroutine sending numbered
// messages, and the count of the page's numbered messages.
type stream struct {
	cancel context.CancelFunc
	done   chan struct{}
	sent   int // guarded by done: read after it is closed

	received   int // touched by serve's goroutine only
	disordered int
	stopOnce   sync.Once
}

func startStream(s *session.Session) *stream {
	ctx, cancel := context.WithCancel(s.Context())
	st := &stream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		t := time.NewTicker(streamEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if s.Send(ctx, textMsg("s "+strconv.Itoa(st.sent+1))) != nil {
				return
			}
			st.sent++
		}
	}()
	return st
}

// upstream counts the page's message numbered n.
func (st *stream) upstream(n string) {
	st.received++
	if n != strconv.Itoa(st.received) {
		st.disordered++
	}
}

// stop stops the stream and returns how many messages it sent.
func (st *stream) stop() int {
	st.stopOnce.Do(st.cancel)
	<-st.done
	return st.sent
}
