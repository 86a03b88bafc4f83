package conformance_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/internal/faultproxy"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// cutsMessages is how many messages go each way; TETHER_CUTS_MESSAGES
// overrides it for a quick run.
func cutsMessages() int {
	if n, err := strconv.Atoi(os.Getenv("TETHER_CUTS_MESSAGES")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// payload is message i's content: its number and a checksum of it, so
// that a corrupted or misnumbered message cannot pass for another.
func payload(dir byte, i int) string {
	s := strconv.Itoa(i)
	return fmt.Sprintf("%c%s:%08x", dir, s, crc32.ChecksumIEEE([]byte(s)))
}

// TestExactDeliveryUnderRandomCuts sends cutsMessages() messages each way
// over every offered transport, through a proxy that cuts every connection
// after a random 100-500ms, and checks count, order and content exactly.
func TestExactDeliveryUnderRandomCuts(t *testing.T) {
	for _, name := range conformance.OfferedTransports(t) {
		t.Run(name, func(t *testing.T) {
			exactDeliveryThrough(t, name, cutsMessages(), &faultproxy.Options{
				CutAfter: faultproxy.Range{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond},
			})
		})
	}
}

// exactDeliveryThrough sends n messages each way over transport, through a
// fault proxy configured by faults, and checks count, order and content
// exactly. It logs the counts and what the proxy did.
func exactDeliveryThrough(t *testing.T, transport string, n int, faults *faultproxy.Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Each direction waits at each quarter of its messages until the proxy
	// has cut one more connection, so that however fast the transport,
	// the messages cross at least three cuts, spread over the transfer.
	var proxyRef atomic.Pointer[faultproxy.Proxy]
	waitForCuts := func(ctx context.Context, i int) {
		if i == 0 || i%(n/4) != 0 {
			return
		}
		for ctx.Err() == nil && proxyRef.Load().Stats().Cuts < int64(i/(n/4)) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	upDone := make(chan error, 1)
	handler := tether.HandlerFunc(func(s *session.Session) {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { // downstream: n numbered messages
			for i := range n {
				waitForCuts(s.Context(), i)
				if err := s.Send(s.Context(), wire.Message{Type: wire.Text, Data: []byte(payload('d', i))}); err != nil {
					return
				}
			}
		})
		for i := range n { // upstream: exactly n, in order
			m, err := s.Recv(s.Context())
			if err != nil {
				upDone <- fmt.Errorf("server Recv after %d messages: %w", i, err)
				return
			}
			if want := payload('u', i); string(m.Data) != want {
				upDone <- fmt.Errorf("server got %q as message %d, want %q", m.Data, i, want)
				return
			}
		}
		upDone <- nil
		s.Recv(s.Context()) // hold the session until the client closes
	})
	e := &conformance.Env{Transport: transport}
	_, base := e.Server(t, handler, &tether.Options{
		HeartbeatInterval: time.Second,
		SlowConsumer:      session.SlowConsumerBlock,
	})
	hostport := strings.TrimPrefix(strings.TrimSuffix(base, "/rt/"), "http://")
	proxy, err := faultproxy.New(hostport, faults)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxyRef.Store(proxy)
	t.Logf("fault proxy seed %d", proxy.Seed())

	start := time.Now()
	c, err := client.Dial(ctx, "http://"+proxy.Addr()+"/rt/", &client.Options{
		Transports: []string{transport},
		MinDelay:   5 * time.Millisecond,
		MaxDelay:   50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(wire.StatusNormalClosure, "")

	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			waitForCuts(ctx, i)
			if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(payload('u', i))}); err != nil {
				sendErr <- fmt.Errorf("client Send %d: %w", i, err)
				return
			}
		}
		sendErr <- nil
	}()
	for i := range n {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("client Recv after %d messages: %v", i, err)
		}
		if want := payload('d', i); string(m.Data) != want {
			t.Fatalf("client got %q as message %d, want %q", m.Data, i, want)
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-upDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the server did not receive every message in time")
	}
	st := proxy.Stats()
	if st.Cuts < 3 {
		t.Fatalf("the proxy made %d cuts, want at least 3", st.Cuts)
	}
	t.Logf("%s: %d messages each way, exact (client received %d, server received %d); %d connections, %d cuts, %d stalls, %s",
		transport, n, n, n, st.Accepted, st.Cuts, st.Stalls, time.Since(start).Round(time.Millisecond))
}
