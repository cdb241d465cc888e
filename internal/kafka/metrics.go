package kafka

import (
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/metrics"
)

// serverMetrics are the wire adapter's metrics: per API, per connection
// and per topic traffic. All of it is updated on the request path, so the
// per-API children are resolved once and per-topic ones cached.
type serverMetrics struct {
	requests  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	conns     prometheus.Gauge
	accepted  prometheus.Counter
	rejected  prometheus.Counter
	perAPI    map[int16]*apiMetrics // read-only after construction
	errorsMap sync.Map              // errorKey → prometheus.Counter
}

type apiMetrics struct {
	name     string
	requests prometheus.Counter
	duration prometheus.Observer
}

type errorKey struct {
	api  int16
	code int16
}

func newServerMetrics(r *metrics.Registry) *serverMetrics {
	m := &serverMetrics{
		requests: r.CounterVec("weir_kafka_requests_total",
			"Kafka protocol requests answered (or, for acks=0 produce, handled), by API.", "api"),
		errors: r.CounterVec("weir_kafka_request_errors_total",
			"Non-zero error codes in Kafka responses, by API and Kafka error name; a response counts once per partition or resource in error.", "api", "error"),
		duration: r.HistogramVec("weir_kafka_request_duration_seconds",
			"Time from a request frame read to its response written, by API; includes fsync waits (acks=all) and fetch long-polls.",
			metrics.LatencyBuckets, "api"),
		conns:    r.Gauge("weir_kafka_connections", "Open Kafka client connections."),
		accepted: r.Counter("weir_kafka_connections_accepted_total", "Kafka client connections accepted."),
		rejected: r.Counter("weir_kafka_connections_rejected_total", "Kafka client connections closed at once because MaxConnections was reached."),
		perAPI:   map[int16]*apiMetrics{},
	}
	for key := range apis {
		m.perAPI[key] = m.newAPI(key)
	}
	return m
}

func (m *serverMetrics) newAPI(key int16) *apiMetrics {
	name := kmsg.NameForKey(key)
	if name == "" || name == "Unknown" {
		name = "Unknown"
	}
	return &apiMetrics{name: name, requests: m.requests.WithLabelValues(name), duration: m.duration.WithLabelValues(name)}
}

func (m *serverMetrics) api(key int16) *apiMetrics {
	if a, ok := m.perAPI[key]; ok {
		return a
	}
	return m.newAPI(key) // a test-only API: rare, not cached
}

// done records one finished request: resp is nil for a request answered
// with no response.
func (m *serverMetrics) done(key int16, start time.Time, resp kmsg.Response) {
	a := m.api(key)
	a.requests.Inc()
	a.duration.Observe(time.Since(start).Seconds())
	if resp == nil {
		return
	}
	forEachErrorCode(resp, func(code int16) {
		m.errorCounter(key, a.name, code).Inc()
	})
}

func (m *serverMetrics) errorCounter(key int16, api string, code int16) prometheus.Counter {
	k := errorKey{key, code}
	if c, ok := m.errorsMap.Load(k); ok {
		return c.(prometheus.Counter)
	}
	name := kerr.UnknownServerError.Message
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && (e.Code == code) {
		name = e.Message
	}
	c, _ := m.errorsMap.LoadOrStore(k, m.errors.WithLabelValues(api, name))
	return c.(prometheus.Counter)
}

// errorPlan lists where a response type keeps error codes: its own int16
// ErrorCode fields and the struct or slice-of-struct fields that hold more.
// Plans are built once per type by reflection and cached.
type errorPlan struct {
	codes  []int
	nested []nestedPlan
}

type nestedPlan struct {
	field int
	slice bool
	plan  *errorPlan
}

var errorPlans sync.Map // reflect.Type (struct) → *errorPlan

func planFor(t reflect.Type) *errorPlan {
	if p, ok := errorPlans.Load(t); ok {
		return p.(*errorPlan)
	}
	p := buildPlan(t, map[reflect.Type]bool{})
	errorPlans.Store(t, p)
	return p
}

func buildPlan(t reflect.Type, seen map[reflect.Type]bool) *errorPlan {
	p := &errorPlan{}
	if seen[t] {
		return p // kmsg types are not recursive; guard anyway
	}
	seen[t] = true
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		switch {
		case f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16:
			p.codes = append(p.codes, i)
		case f.Type.Kind() == reflect.Struct:
			if sub := buildPlan(f.Type, seen); !sub.empty() {
				p.nested = append(p.nested, nestedPlan{field: i, plan: sub})
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			if sub := buildPlan(f.Type.Elem(), seen); !sub.empty() {
				p.nested = append(p.nested, nestedPlan{field: i, slice: true, plan: sub})
			}
		}
	}
	delete(seen, t)
	return p
}

func (p *errorPlan) empty() bool { return len(p.codes) == 0 && len(p.nested) == 0 }

// forEachErrorCode calls fn with every non-zero ErrorCode in resp: the
// top-level one and those of each topic, partition or resource.
func forEachErrorCode(resp kmsg.Response, fn func(int16)) {
	// The hot APIs without reflection.
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for i := range r.Topics {
			for _, p := range r.Topics[i].Partitions {
				if p.ErrorCode != 0 {
					fn(p.ErrorCode)
				}
			}
		}
		return
	case *kmsg.FetchResponse:
		if r.ErrorCode != 0 {
			fn(r.ErrorCode)
		}
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				if c := r.Topics[i].Partitions[j].ErrorCode; c != 0 {
					fn(c)
				}
			}
		}
		return
	}
	v := reflect.ValueOf(resp)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return
	}
	v = v.Elem()
	planFor(v.Type()).walk(v, fn)
}

func (p *errorPlan) walk(v reflect.Value, fn func(int16)) {
	for _, i := range p.codes {
		if c := int16(v.Field(i).Int()); c != 0 {
			fn(c)
		}
	}
	for _, n := range p.nested {
		f := v.Field(n.field)
		if !n.slice {
			n.plan.walk(f, fn)
			continue
		}
		for j := 0; j < f.Len(); j++ {
			n.plan.walk(f.Index(j), fn)
		}
	}
}
