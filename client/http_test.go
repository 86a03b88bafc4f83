package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetherkit/tether/transport"
)

// TestRequestDeadline checks that the requests of one loop are each bounded
// by the timeout, that one answered in time leaves the next unaffected, and
// that the loop's own cancellation is not reported as a timeout.
func TestRequestDeadline(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hang") != "" {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ts.Close()
	defer close(release)
	s := &Session{hc: ts.Client()}
	s.neg.Store(&negotiation{transport.Negotiation{Token: "token"}})

	ctx, cancel := context.WithCancel(context.Background())
	// Answered requests get a minute each, so that a loaded machine cannot
	// make one overrun; the one never answered, on the same deadline, 50 ms.
	d := newRequestDeadline(ctx, time.Minute)
	defer d.close()
	for range 3 {
		rp, err := s.do(d, http.MethodGet, ts.URL, nil)
		if err != nil || rp.status != http.StatusNoContent {
			t.Fatalf("request answered at once: %d, %v", rp.status, err)
		}
	}
	d.timeout = 50 * time.Millisecond
	if _, err := s.do(d, http.MethodGet, ts.URL+"?hang=1", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request never answered: %v, want context.DeadlineExceeded", err)
	}

	d2 := newRequestDeadline(ctx, time.Hour)
	defer d2.close()
	go cancel()
	if _, err := s.do(d2, http.MethodGet, ts.URL+"?hang=1", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("request of a canceled loop: %v, want context.Canceled", err)
	}
}
