package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/client"
	"github.com/tetherkit/tether/internal/conformance"
	"github.com/tetherkit/tether/metrics"
	"github.com/tetherkit/tether/session"
	"github.com/tetherkit/tether/wire"
)

// metricValue returns the value of the metric name with exactly labels
// (name=value pairs), or 0 when it has none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// sessionsGauge sums tether_sessions over every transport label.
func sessionsGauge(t *testing.T, reg *prometheus.Registry) float64 {
	var sum float64
	for _, name := range []string{"none", "websocket", "sse", "streaming", "longpoll"} {
		sum += metricValue(t, reg, "tether_sessions", "transport", name)
	}
	return sum
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(reg); err == nil {
		t.Fatal("New registered the same metrics twice")
	}
	_, base := (&conformance.Env{}).Server(t, conformance.Echo, &tether.Options{Observer: m, HeartbeatInterval: time.Second})

	// A client on long polling, the last transport offered: its first
	// attach is no fallback (every session starts there).
	c, err := client.Dial(ctx, base, &client.Options{Transports: []string{"longpoll"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		if err := c.Send(ctx, wire.Message{Type: wire.Text, Data: []byte(fmt.Sprintf("m%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if _, err := c.Recv(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A send request can beat the first poll to the server: its messages
	// then count under "none".
	if got := metricValue(t, reg, "tether_messages_total", "transport", "longpoll", "direction", "in") +
		metricValue(t, reg, "tether_messages_total", "transport", "none", "direction", "in"); got != n {
		t.Errorf("messages in = %v, want %d", got, n)
	}
	if got := metricValue(t, reg, "tether_messages_total", "transport", "longpoll", "direction", "out"); got != n {
		t.Errorf("messages out = %v, want %d", got, n)
	}
	if got := metricValue(t, reg, "tether_message_bytes_total", "transport", "longpoll", "direction", "out"); got != 2*n {
		t.Errorf("bytes out = %v, want %d", got, 2*n)
	}
	if got := metricValue(t, reg, "tether_fallbacks_total", "transport", "longpoll"); got != 0 {
		t.Errorf("fallbacks = %v, want 0: a first attach is no fallback", got)
	}
	if got := metricValue(t, reg, "tether_negotiates_total", "result", "ok"); got != 1 {
		t.Errorf("negotiates ok = %v, want 1", got)
	}
	// The labels are read one after another while the polling client
	// moves between "longpoll" and "none", so one sum may count it twice
	// or not at all: read until a sum is consistent, within a bound.
	gotSessions := sessionsGauge(t, reg)
	for i := 0; i < 200 && gotSessions != 1; i++ {
		time.Sleep(5 * time.Millisecond)
		gotSessions = sessionsGauge(t, reg)
	}
	if gotSessions != 1 {
		t.Errorf("sessions = %v, want 1", gotSessions)
	}

	// A raw session: two messages ("a", "b") polled, then the last poll
	// made again as after a lost answer: a resume replaying what that
	// answer carried (both messages, or "b" alone when the first poll came
	// before its echo; a poll from 0 after one from 1 would be stale).
	q, _ := conformance.Negotiate(t, base)
	postBatch(t, base+"send?seq=1&"+q, wire.AppendBatchFrame(wire.AppendBatchFrame(nil, []byte("ma")), []byte("mb")))
	got, last := 0, 0
	for got < 2 {
		last = got
		body := get(t, fmt.Sprintf("%slongpoll?received=%d&%s", base, got, q))
		wire.ParseBatch(body, 1<<20, func(f wire.Frame) error {
			if f.IsMessage() {
				got++
			}
			return nil
		})
	}
	get(t, fmt.Sprintf("%slongpoll?received=%d&%s", base, last, q))
	if got := metricValue(t, reg, "tether_resumes_total", "transport", "longpoll"); got != 1 {
		t.Errorf("resumes = %v, want 1", got)
	}
	if replayed := metricValue(t, reg, "tether_replayed_messages_total"); replayed != float64(got-last) {
		t.Errorf("replayed = %v, want %d", replayed, got-last)
	}
	// A malformed send: 400, logged at Warn.
	if status := postBatch(t, base+"send?seq=3&"+q, []byte("x:")); status != http.StatusBadRequest {
		t.Errorf("malformed send: %d, want 400", status)
	}
	postBatch(t, base+"send?"+q, wire.AppendBatchFrame(nil, []byte("c4100 bye")))

	c.Close(wire.StatusNormalClosure, "done")
	waitFor(t, "both sessions to end", func() bool {
		return metricValue(t, reg, "tether_closes_total", "code", "1000") == 1 &&
			metricValue(t, reg, "tether_closes_total", "code", "4100") == 1
	})
	waitFor(t, "the sessions gauge to fall to 0", func() bool { return sessionsGauge(t, reg) == 0 })
	if n, err := testutil.GatherAndCount(reg, "tether_closes_total"); err != nil || n != 2 {
		t.Errorf("closes_total series = %d, %v; want 2", n, err)
	}

}

func postBatch(t *testing.T, u string, body []byte) int {
	t.Helper()
	resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	return b
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFallbacksAndUpgrades drives a server observer through a session's
// attaches: the first one counts as neither, a move down the offer as a
// fallback, a move up as an upgrade, the same transport again as neither.
func TestFallbacksAndUpgrades(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	o := m.ServerObserver([]string{"websocket", "sse", "streaming", "longpoll"})
	o.Opened()
	for _, a := range []struct{ transport, previous string }{
		{"longpoll", ""},           // the first attach: neither
		{"websocket", "longpoll"},  // fast connect takes over: an upgrade
		{"websocket", "websocket"}, // resumed on the same: neither
		{"sse", "websocket"},       // WebSocket broke: a fallback
		{"longpoll", "sse"},        // and again
		{"websocket", "longpoll"},  // back after the outage: an upgrade
	} {
		o.Attached(a.transport, a.previous, 0)
	}
	for _, c := range []struct {
		metric, transport string
		want              float64
	}{
		{"tether_fallbacks_total", "sse", 1},
		{"tether_fallbacks_total", "longpoll", 1},
		{"tether_fallbacks_total", "websocket", 0},
		{"tether_upgrades_total", "websocket", 2},
		{"tether_upgrades_total", "longpoll", 0},
		{"tether_upgrades_total", "sse", 0},
	} {
		if got := metricValue(t, reg, c.metric, "transport", c.transport); got != c.want {
			t.Errorf("%s{transport=%q} = %v, want %v", c.metric, c.transport, got, c.want)
		}
	}
}

// TestQueuedBytes checks tether_queued_bytes: what the server's queues
// hold (Server.QueuedBytes), here two echoes the client has not
// acknowledged, and 0 once the session has ended.
func TestQueuedBytes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv, base := (&conformance.Env{}).Server(t, conformance.Echo, &tether.Options{Observer: m})
	q, _ := conformance.Negotiate(t, base)
	if got := postBatch(t, base+"send?seq=1&"+q, wire.AppendBatchFrame(wire.AppendBatchFrame(nil, []byte("ma")), []byte("mb"))); got != http.StatusNoContent {
		t.Fatalf("send: %d", got)
	}
	want := float64(2 * (1 + session.MessageOverhead)) // two echoes of one byte
	got := metricValue(t, reg, "tether_queued_bytes")
	for deadline := time.Now().Add(10 * time.Second); got != want && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got = metricValue(t, reg, "tether_queued_bytes")
	}
	if got != want || srv.QueuedBytes() != int64(want) {
		t.Errorf("tether_queued_bytes = %v, Server.QueuedBytes() = %d with two echoes queued, want %v", got, srv.QueuedBytes(), want)
	}
	postBatch(t, base+"send?seq=3&"+q, wire.AppendBatchFrame(nil, []byte("c1000")))
	for deadline := time.Now().Add(10 * time.Second); got != 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got = metricValue(t, reg, "tether_queued_bytes")
	}
	if got != 0 {
		t.Errorf("tether_queued_bytes = %v once the session ended, want 0", got)
	}
}
