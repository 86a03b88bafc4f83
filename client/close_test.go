package client_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestServerClose checks that a close frame from the server ends the
// session with its code and reason, after every message sent before it.
func TestServerClose(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := startServer(t, func(s *session.Session) {
				for i := range 10 {
					s.Send(s.Context(), textMsg(strconv.Itoa(i)))
				}
				s.Close(4100, "app done")
			}, nil, nil)
			var n network
			s := dial(t, ctx, url, n.options(t, name))
			for i := range 10 {
				m, err := s.Recv(ctx)
				if err != nil || string(m.Data) != strconv.Itoa(i) {
					t.Fatalf("Recv() #%d = %q, %v; want %q", i, m.Data, err, strconv.Itoa(i))
				}
			}
			_, err := s.Recv(ctx)
			var ce wire.CloseError
			if !errors.As(err, &ce) || ce.Code != 4100 || ce.Reason != "app done" {
				t.Fatalf("Recv() after the messages = %v, want CloseError 4100 app done", err)
			}
			<-s.Done()
			if err := s.Close(wire.StatusNormalClosure, ""); wire.CloseStatus(err) != 4100 {
				t.Fatalf("Close() after the server closed = %v, want the server's CloseError", err)
			}
			if s.Context().Err() == nil {
				t.Fatal("Context() not canceled after the session ended")
			}
		})
	}
}

// TestCloseDeliversEverything checks that the messages sent before Close
// reach the server application, all of them and in order, before the close.
func TestCloseDeliversEverything(t *testing.T) {
	const total = 500
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			type result struct {
				count int
				err   error
			}
			results := make(chan result, 1)
			url := startServer(t, func(s *session.Session) {
				for i := 0; ; i++ {
					m, err := s.Recv(s.Context())
					if err != nil {
						results <- result{i, err}
						return
					}
					if string(m.Data) != strconv.Itoa(i) {
						results <- result{i, errors.New("out of order: " + string(m.Data))}
						return
					}
				}
			}, nil, nil)
			var n network
			s := dial(t, ctx, url, n.options(t, name))
			for i := range total {
				if err := s.Send(ctx, textMsg(strconv.Itoa(i))); err != nil {
					t.Fatalf("Send(%d) = %v", i, err)
				}
			}
			if err := s.Close(4200, "client done"); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			select {
			case r := <-results:
				if r.count != total || wire.CloseStatus(r.err) != 4200 {
					t.Fatalf("server got %d messages, then %v; want %d then CloseError 4200", r.count, r.err, total)
				}
			case <-ctx.Done():
				t.Fatal("the server application never saw the close")
			}
			if err := s.Close(wire.StatusNormalClosure, ""); err != nil {
				t.Fatalf("second Close() = %v, want nil", err)
			}
		})
	}
}

// TestSessionExpired keeps the network down past the resume window: the
// session must end with 4001.
func TestSessionExpired(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := startServer(t, echo, &tether.Options{ResumeWindow: 300 * time.Millisecond}, nil)
			var n network
			s := dial(t, ctx, url, n.options(t, name))
			n.setDown(true)
			n.cut()
			_, err := s.Recv(ctx)
			if wire.CloseStatus(err) != wire.StatusSessionExpired {
				t.Fatalf("Recv() with the network down = %v, want CloseError 4001", err)
			}
			if got := s.Transport(); got != "" {
				t.Fatalf("Transport() after the end = %q, want \"\"", got)
			}
		})
	}
}

// TestSessionAbortedOnServer checks that a session the server aborts ends
// on the client with the abort's code, delivered best effort on the
// connection attached at the time.
func TestSessionAbortedOnServer(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := startServer(t, func(s *session.Session) {
				s.Recv(s.Context())
				s.Abort(wire.CloseError{Code: wire.StatusInternalError, Reason: "forgotten"})
			}, nil, nil)
			var n network
			o := n.options(t, name)
			o.DisableReconnect = true // 1011 would have the client negotiate a new session
			s := dial(t, ctx, url, o)
			if err := s.Send(ctx, textMsg("forget me")); err != nil {
				t.Fatal(err)
			}
			_, err := s.Recv(ctx)
			var ce wire.CloseError
			if !errors.As(err, &ce) || ce.Code != wire.StatusInternalError || ce.Reason != "forgotten" {
				t.Fatalf("Recv() = %v, want CloseError 1011 forgotten", err)
			}
		})
	}
}

// TestServerShutdown checks that a server going away ends the session with
// 1001, a code that asks for a new session, which the client leaves to the
// application under Options.DisableReconnect.
func TestServerShutdown(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			stop := make(chan struct{})
			var srv *tether.Server
			url := startServer(t, func(s *session.Session) {
				close(stop)
				echo(s)
			}, nil, func(h http.Handler) http.Handler {
				srv = h.(*tether.Server)
				return h
			})
			var n network
			o := n.options(t, name)
			o.DisableReconnect = true
			s := dial(t, ctx, url, o)
			<-stop
			go srv.Shutdown(ctx)
			_, err := s.Recv(ctx)
			code := wire.CloseStatus(err)
			if code != wire.StatusGoingAway || !code.Reconnects() {
				t.Fatalf("Recv() during Shutdown = %v, want CloseError 1001", err)
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startServer(t, echo, &tether.Options{
		Authorize: func(r *http.Request) (any, error) {
			if r.Header.Get("Authorization") != "Bearer open sesame" {
				return nil, &tether.AuthError{Status: http.StatusForbidden, Message: "who are you"}
			}
			return "ok", nil
		},
	}, nil)
	var n network
	o := n.options(t, "")
	_, err := client.Dial(ctx, url, o)
	var ne *client.NegotiateError
	if !errors.As(err, &ne) || ne.Status != http.StatusForbidden || ne.Message != "who are you" {
		t.Fatalf("Dial() without credentials = %v, want NegotiateError 403 who are you", err)
	}
	o.Header = http.Header{"Authorization": {"Bearer open sesame"}}
	dial(t, ctx, url, o)
	if o.Header.Get("Authorization") != "Bearer open sesame" || o.ConnectTimeout != 0 {
		t.Fatal("Dial changed the caller's Options")
	}
}

// TestCloseWhileDown checks that Close gives up after CloseTimeout when the
// server cannot be reached, and still stops every goroutine.
func TestCloseWhileDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// The resume window outlasts the test by far, so the session is still
	// resumable when Close gives up (a window of a few CloseTimeouts ran
	// out first on a starved machine: Close returned 4001). A short
	// heartbeat lets the server's Shutdown forget the session soon after
	// the test, which cannot tell it.
	url := startServer(t, echo, &tether.Options{ResumeWindow: time.Minute, HeartbeatInterval: 250 * time.Millisecond}, nil)
	var n network
	o := n.options(t, "")
	o.CloseTimeout = 100 * time.Millisecond
	s := dial(t, ctx, url, o)
	n.setDown(true)
	n.cut()
	err := s.Close(wire.StatusNormalClosure, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close() with the network down = %v, want context.DeadlineExceeded", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done() not closed when Close returned")
	}
	if _, err := s.Recv(ctx); wire.CloseStatus(err) != wire.StatusNormalClosure {
		t.Fatalf("Recv() after Close = %v, want CloseError 1000", err)
	}
}

func TestSendRefusesBadMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := startServer(t, echo, &tether.Options{MaxMessageBytes: 1000}, nil)
	var n network
	s := dial(t, ctx, url, n.options(t, ""))
	tests := []struct {
		m    wire.Message
		want error
	}{
		{wire.Message{Type: wire.Binary, Data: make([]byte, 1001)}, wire.ErrMessageTooBig},
		{wire.Message{Type: wire.Text, Data: []byte{0xff}}, wire.ErrInvalidMessage},
		{wire.Message{Data: []byte("no type")}, wire.ErrInvalidMessage},
	}
	for _, tt := range tests {
		if err := s.Send(ctx, tt.m); !errors.Is(err, tt.want) {
			t.Errorf("Send(%v, %d bytes) = %v, want %v", tt.m.Type, len(tt.m.Data), err, tt.want)
		}
	}
	if err := s.Send(ctx, wire.Message{Type: wire.Binary, Data: make([]byte, 1000)}); err != nil {
		t.Fatalf("Send() at the limit = %v", err)
	}
	if m, err := s.Recv(ctx); err != nil || len(m.Data) != 1000 {
		t.Fatalf("Recv() = %d bytes, %v; want 1000", len(m.Data), err)
	}
	if err := s.Close(999, ""); !errors.Is(err, wire.ErrInvalidCloseCode) {
		t.Fatalf("Close(999) = %v, want ErrInvalidCloseCode", err)
	}
}
