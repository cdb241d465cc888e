// Package metrics is Weir's thin wrapper around a Prometheus registry: one
// Registry per node, passed down in each package's Options, never global.
//
// Every constructor works on a nil *Registry: the metric is then created but
// registered nowhere, so a package given no registry (most unit tests)
// records into private metrics at the same cost and needs no nil checks.
//
// Naming follows Prometheus conventions: a weir_ prefix, base units
// (seconds, bytes), _total on counters. This package is a leaf: it imports
// no other weir package.
package metrics

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Weir metric name.
const Namespace = "weir"

// Registry holds one node's metrics. The zero value is not usable; use New.
// A nil *Registry is valid everywhere and registers nothing.
type Registry struct {
	reg *prometheus.Registry
}

// New returns a registry holding the Go runtime and process collectors.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// NewBare returns an empty registry, for tests that compare whole outputs.
func NewBare() *Registry { return &Registry{reg: prometheus.NewRegistry()} }

// Gatherer returns the registry as a prometheus.Gatherer (nil-safe: an
// empty gatherer).
func (r *Registry) Gatherer() prometheus.Gatherer {
	if r == nil {
		return prometheus.Gatherers{}
	}
	return r.reg
}

// Handler serves the registry in the Prometheus text or OpenMetrics format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Gatherer(), promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// Register adds collectors (scrape-time collectors reading component
// state). It panics on a duplicate, a programming error; on a nil Registry
// it does nothing.
func (r *Registry) Register(cs ...prometheus.Collector) {
	if r == nil {
		return
	}
	r.reg.MustRegister(cs...)
}

// Unregister removes a collector added with Register.
func (r *Registry) Unregister(c prometheus.Collector) bool {
	if r == nil {
		return false
	}
	return r.reg.Unregister(c)
}

// CounterVec returns a registered counter family; name is the full metric
// name (weir_..._total).
func (r *Registry) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// Counter returns a registered counter without labels.
func (r *Registry) Counter(name, help string) prometheus.Counter {
	return register(r, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// GaugeVec returns a registered gauge family.
func (r *Registry) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

// Gauge returns a registered gauge without labels.
func (r *Registry) Gauge(name, help string) prometheus.Gauge {
	return register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

// HistogramVec returns a registered histogram family with buckets.
func (r *Registry) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

// Histogram returns a registered histogram without labels.
func (r *Registry) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

// register adds c to r, or returns the identical metric registered
// before (a component restarted in the same process keeps counting into
// it). A different metric under the same name is a programming error and
// panics.
func register[C prometheus.Collector](r *Registry, c C) C {
	if r == nil {
		return c
	}
	if err := r.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// LatencyBuckets are the histogram buckets for request and storage
// latencies, in seconds: 50µs doubling to about 26s (20 buckets), fine
// enough for a local fsync and wide enough for a fetch long-poll.
var LatencyBuckets = prometheus.ExponentialBuckets(0.00005, 2, 20)

// SizeBuckets count things per operation (records per group commit): 1
// doubling to 65,536.
var SizeBuckets = prometheus.ExponentialBuckets(1, 2, 17)
