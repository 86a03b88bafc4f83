package metrics_test

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherkit/tether"
	"github.com/tetherkit/tether/metrics"
	"github.com/tetherkit/tether/session"
)

// A server counting into Prometheus' default registry, with the metrics
// served at /metrics.
func ExampleNew() {
	reg := prometheus.NewRegistry() // prometheus.DefaultRegisterer in a program
	m, err := metrics.New(reg)
	if err != nil {
		panic(err)
	}
	rt := tether.NewServer(tether.HandlerFunc(func(s *session.Session) {}), &tether.Options{Observer: m})
	mux := http.NewServeMux()
	mux.Handle("/rt/", rt)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	_ = mux // http.ListenAndServe("127.0.0.1:8080", mux)
	// Output:
}
