package kafka

import (
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
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
	bytesIn   *prometheus.CounterVec
	recsIn    *prometheus.CounterVec
	bytesOut  *prometheus.CounterVec
	recsOut   *prometheus.CounterVec
	perAPI    map[int16]*apiMetrics // read-only after construction
	topics    sync.Map              // topic name → *topicMetrics
	topicsMu  sync.Mutex            // serialises creation and removal in topics
	errorsMap sync.Map              // errorKey → prometheus.Counter
}

type apiMetrics struct {
	name     string
	requests prometheus.Counter
	duration prometheus.Observer
}

type topicMetrics struct {
	bytesIn, recsIn, bytesOut, recsOut prometheus.Counter
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
		bytesIn: r.CounterVec("weir_topic_bytes_in_total",
			"Record batch bytes appended by Produce, by topic (idempotent retries not counted).", "topic"),
		recsIn: r.CounterVec("weir_topic_records_in_total",
			"Records appended by Produce, by topic (idempotent retries not counted).", "topic"),
		bytesOut: r.CounterVec("weir_topic_bytes_out_total",
			"Record batch bytes sent in Fetch responses, by topic.", "topic"),
		recsOut: r.CounterVec("weir_topic_records_out_total",
			"Records in the batches sent in Fetch responses, by topic (a first batch may start before the fetch offset).", "topic"),
		perAPI: map[int16]*apiMetrics{},
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
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		m.fetched(f)
	}
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

func (m *serverMetrics) topic(name string) *topicMetrics {
	if t, ok := m.topics.Load(name); ok {
		return t.(*topicMetrics)
	}
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	if t, ok := m.topics.Load(name); ok {
		return t.(*topicMetrics)
	}
	t := &topicMetrics{
		bytesIn:  m.bytesIn.WithLabelValues(name),
		recsIn:   m.recsIn.WithLabelValues(name),
		bytesOut: m.bytesOut.WithLabelValues(name),
		recsOut:  m.recsOut.WithLabelValues(name),
	}
	m.topics.Store(name, t)
	return t
}

// produced counts one partition's successful append.
func (m *serverMetrics) produced(topic string, bytes int, records int64) {
	t := m.topic(topic)
	t.bytesIn.Add(float64(bytes))
	t.recsIn.Add(float64(records))
}

// fetched counts the record batches of a Fetch response.
func (m *serverMetrics) fetched(resp *kmsg.FetchResponse) {
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		var bytes, records int64
		for j := range rt.Partitions {
			data := rt.Partitions[j].RecordBatches
			bytes += int64(len(data))
			for len(data) >= batch.HeaderSize {
				h, err := batch.ParseHeader(data)
				if err != nil || h.Size() > len(data) {
					break
				}
				records += int64(h.NumRecords)
				data = data[h.Size():]
			}
		}
		if bytes > 0 {
			t := m.topic(rt.Topic)
			t.bytesOut.Add(float64(bytes))
			t.recsOut.Add(float64(records))
		}
	}
}

// forgetTopic drops a deleted topic's series, so a scrape does not report
// it forever.
func (m *serverMetrics) forgetTopic(name string) {
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	m.topics.Delete(name)
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.recsIn, m.bytesOut, m.recsOut} {
		v.DeleteLabelValues(name)
	}
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
