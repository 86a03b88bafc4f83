// Package metrics counts what Tether servers and their sessions do into
// Prometheus metrics (client_golang). It is a package of its own so that an
// application that does not use Prometheus does not compile it:
//
//	m, err := metrics.New(prometheus.DefaultRegisterer)
//	rt := tether.NewServer(h, &tether.Options{Observer: m})
//	http.Handle("/metrics", promhttp.Handler())
package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/transport"
	"github.com/tetherkit/tether/wire"
)

// Metrics are Prometheus metrics of Tether servers. Make them with New and
// give them to one or more servers in tether.Options.Observer; the servers
// then count into them. Every metric is updated with atomic adds on counters
// resolved in advance: no lock and no allocation per message.
//
// The metrics, all prefixed tether_:
//
//	sessions{transport}                 gauge: sessions by the transport attached now ("none" between connections)
//	messages_total{transport,direction} counter: messages in (accepted from clients, duplicates excluded; labeled with the transport attached last, "none" before the first attach) and out (handed to connections, replays included)
//	message_bytes_total{transport,direction} counter: their payload bytes
//	negotiates_total{result}            counter: negotiate requests by result: ok, refused (auth hook), too_many_sessions, too_many_for_client, shutting_down, unavailable (a durable cluster could not store the session)
//	fallbacks_total{transport}          counter: attaches on a transport later in the offer than the same session's previous connection: a move down, the better transport broke or is blocked
//	upgrades_total{transport}           counter: attaches on a transport earlier in the offer than the same session's previous connection: fast connect taking over from long polling, or a session going back to a better transport after an outage
//	resumes_total{transport}            counter: attaches that replay messages an earlier connection carried and the client did not receive
//	replayed_messages_total             counter: the messages those attaches replay
//	closes_total{code}                  counter: sessions ended, by close code
//	queue_drops_total                   counter: messages dropped by SlowConsumerDrop
//	queued_bytes                        gauge: what the servers' session queues hold, both directions, as Options.MaxQueuedBytesTotal counts it
//
// A session's first attach is neither a fallback nor an upgrade: both
// clients start on long polling, the last transport offered, and upgrade
// (PROTOCOL.md section 10), so counting it would count every session. How
// many sessions are on each transport now is tether_sessions.
type Metrics struct {
	sessions   *prometheus.GaugeVec
	messages   *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	negotiates *prometheus.CounterVec
	fallbacks  *prometheus.CounterVec
	upgrades   *prometheus.CounterVec
	resumes    *prometheus.CounterVec
	replayed   prometheus.Counter
	closes     *prometheus.CounterVec
	drops      prometheus.Counter
	queued     prometheus.GaugeFunc

	queuedMu  sync.Mutex
	queuedFns []func() int64 // guarded by queuedMu: each server's QueuedBytes

	// byName maps a transport name to its *transportMetrics. A name is
	// stored once and then read on every batch, under the session's lock:
	// sync.Map reads it without a lock of its own.
	byName sync.Map
}

// transportMetrics are one transport's children of the labeled metrics.
type transportMetrics struct {
	sessions            prometheus.Gauge
	msgsIn, msgsOut     prometheus.Counter
	bytesIn, bytesOut   prometheus.Counter
	fallbacks, upgrades prometheus.Counter
	resumes             prometheus.Counter
}

// noTransport is the transport label of sessions with no connection.
const noTransport = "none"

// New makes a server's metrics and registers them with reg. reg may
// be nil to register nowhere (read them with Gather on a registry of your
// own, or in tests); prometheus.DefaultRegisterer exposes them with
// promhttp.Handler(). It returns an error if reg refuses one, for example
// because metrics of the same names are registered already.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tether_sessions",
			Help: "Sessions by the transport attached now (none: between connections).",
		}, []string{"transport"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_messages_total",
			Help: "Messages in (accepted from clients) and out (handed to connections, replays included).",
		}, []string{"transport", "direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_message_bytes_total",
			Help: "Payload bytes of tether_messages_total.",
		}, []string{"transport", "direction"}),
		negotiates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_negotiates_total",
			Help: "Negotiate requests by result.",
		}, []string{"result"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_fallbacks_total",
			Help: "Attaches on a transport later in the offer than the same session's previous connection (a session's first attach excluded).",
		}, []string{"transport"}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_upgrades_total",
			Help: "Attaches on a transport earlier in the offer than the same session's previous connection (a session's first attach excluded).",
		}, []string{"transport"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_resumes_total",
			Help: "Attaches that replay messages an earlier connection did not deliver.",
		}, []string{"transport"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tether_replayed_messages_total",
			Help: "Messages replayed by resuming attaches.",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_closes_total",
			Help: "Sessions ended, by close code.",
		}, []string{"code"}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tether_queue_drops_total",
			Help: "Messages dropped because the client was too slow (SlowConsumerDrop).",
		}),
	}
	m.queued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tether_queued_bytes",
		Help: "Bytes the servers' session queues hold, both directions, as MaxQueuedBytesTotal counts them.",
	}, m.queuedBytes)
	if reg != nil {
		for _, c := range m.Collectors() {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range append([]string{noTransport}, transport.Names()...) {
		m.transport(name)
	}
	return m, nil
}

// Collectors returns every metric, to register them with a registry of
// your own.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sessions, m.messages, m.bytes, m.negotiates,
		m.fallbacks, m.upgrades, m.resumes, m.replayed, m.closes, m.drops, m.queued}
}

// queuedBytes sums what the queues of the servers watched hold now.
func (m *Metrics) queuedBytes() float64 {
	m.queuedMu.Lock()
	defer m.queuedMu.Unlock()
	var sum int64
	for _, fn := range m.queuedFns {
		sum += fn()
	}
	return float64(sum)
}

// transport returns the children for one transport name, making them the
// first time.
func (m *Metrics) transport(name string) *transportMetrics {
	if name == "" {
		name = noTransport
	}
	if t, ok := m.byName.Load(name); ok {
		return t.(*transportMetrics)
	}
	t, _ := m.byName.LoadOrStore(name, &transportMetrics{
		sessions:  m.sessions.WithLabelValues(name),
		msgsIn:    m.messages.WithLabelValues(name, "in"),
		msgsOut:   m.messages.WithLabelValues(name, "out"),
		bytesIn:   m.bytes.WithLabelValues(name, "in"),
		bytesOut:  m.bytes.WithLabelValues(name, "out"),
		fallbacks: m.fallbacks.WithLabelValues(name),
		upgrades:  m.upgrades.WithLabelValues(name),
		resumes:   m.resumes.WithLabelValues(name),
	})
	return t.(*transportMetrics)
}

// ServerObserver returns what one server, offering transports in the order
// offered, tells what it does: it implements tether.Observer.
func (m *Metrics) ServerObserver(offered []string) tether.ServerObserver {
	return newObserver(m, offered)
}

// observer is one server's tether.ServerObserver: it counts into Metrics
// and knows the server's offer order, to tell fallbacks from upgrades.
type observer struct {
	m    *Metrics
	rank map[string]int // position of each offered transport
}

func newObserver(m *Metrics, offered []string) *observer {
	o := &observer{m: m, rank: make(map[string]int, len(offered))}
	for i, name := range offered {
		o.rank[name] = i
		m.transport(name)
	}
	return o
}

func (o *observer) Negotiated(result tether.NegotiateResult) {
	o.m.negotiates.WithLabelValues(string(result)).Inc()
}

func (o *observer) Opened() { o.m.transport(noTransport).sessions.Inc() }

func (o *observer) Attached(transport, previous string, replayed uint64) {
	t := o.m.transport(transport)
	o.m.transport(noTransport).sessions.Dec()
	t.sessions.Inc()
	if previous != "" {
		switch r, p := o.rank[transport], o.rank[previous]; {
		case r > p:
			t.fallbacks.Inc()
		case r < p:
			t.upgrades.Inc()
		}
	}
	if replayed > 0 {
		t.resumes.Inc()
		o.m.replayed.Add(float64(replayed))
	}
}

func (o *observer) Detached(transport string) {
	o.m.transport(transport).sessions.Dec()
	o.m.transport(noTransport).sessions.Inc()
}

func (o *observer) MessagesOut(transport string, n, size int) {
	t := o.m.transport(transport)
	t.msgsOut.Add(float64(n))
	t.bytesOut.Add(float64(size))
}

func (o *observer) MessagesIn(transport string, n, size int) {
	t := o.m.transport(transport)
	t.msgsIn.Add(float64(n))
	t.bytesIn.Add(float64(size))
}

func (o *observer) Dropped() { o.m.drops.Inc() }

// WatchQueuedBytes adds the server's queues to tether_queued_bytes: it
// implements tether.QueueObserver. The metrics keep the function, and so
// the server, as long as they live.
func (o *observer) WatchQueuedBytes(queued func() int64) {
	o.m.queuedMu.Lock()
	defer o.m.queuedMu.Unlock()
	o.m.queuedFns = append(o.m.queuedFns, queued)
}

func (o *observer) Finished(transport string, code wire.StatusCode) {
	o.m.transport(transport).sessions.Dec()
	o.m.closes.WithLabelValues(strconv.Itoa(int(code))).Inc()
}
