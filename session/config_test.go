package session_test

import (
	"errors"
	"testing"

	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// TestConfigDefaults gives a session no Config and a zero one: it takes the
// documented defaults, so a message of DefaultMaxMessageBytes goes and a
// byte more does not, and the queue holds DefaultMaxQueuedBytes before the
// default policy closes the session; the caller's Config stays as it was.
func TestConfigDefaults(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  *session.Config
	}{{"nil", nil}, {"zero", &session.Config{}}} {
		t.Run(tt.name, func(t *testing.T) {
			s := session.New(tt.cfg, session.RequestInfo{}, nil)
			t.Cleanup(func() { s.Abort(wire.CloseError{Code: wire.StatusGoingAway}) })
			ctx := testContext(t)
			big := wire.Message{Type: wire.Binary, Data: make([]byte, session.DefaultMaxMessageBytes+1)}
			if err := s.Send(ctx, big); !errors.Is(err, wire.ErrMessageTooBig) {
				t.Fatalf("Send of DefaultMaxMessageBytes+1 = %v, want ErrMessageTooBig", err)
			}
			full := wire.Message{Type: wire.Binary, Data: big.Data[:session.DefaultMaxMessageBytes]}
			fits := session.DefaultMaxQueuedBytes / (session.DefaultMaxMessageBytes + session.MessageOverhead)
			for i := range fits {
				if err := s.Send(ctx, full); err != nil {
					t.Fatalf("Send %d of %d messages of DefaultMaxMessageBytes = %v, want nil", i+1, fits, err)
				}
			}
			var ce wire.CloseError
			if err := s.Send(ctx, full); !errors.As(err, &ce) || ce.Code != wire.StatusSlowConsumer {
				t.Fatalf("Send past DefaultMaxQueuedBytes = %v, want a CloseError with StatusSlowConsumer", err)
			}
			if tt.cfg != nil && *tt.cfg != (session.Config{}) {
				t.Errorf("New changed the caller's Config to %+v", *tt.cfg)
			}
		})
	}
}
