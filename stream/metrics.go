package stream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics; a nil *metrics records
// nothing.
type metrics struct {
	records   *prometheus.CounterVec
	late      *prometheus.CounterVec
	wmLag     *prometheus.GaugeVec
	commitLat prometheus.Histogram
	aborts    prometheus.Counter

	sinkRecords  *prometheus.CounterVec   // {topic}
	batchLat     prometheus.Histogram     // per polled batch
	e2eEvent     *prometheus.HistogramVec // {subtopology}
	e2eAppend    *prometheus.HistogramVec // {subtopology}
	stateEntries *prometheus.GaugeVec     // {task,store}
	stateBytes   *prometheus.GaugeVec     // {task,store}
	restored     *prometheus.CounterVec   // {task,store}
	restoreLeft  *prometheus.GaugeVec     // {task,store}
	sinkByTopic  map[string]prometheus.Counter
}

// latencyBuckets: 1 ms to about 9 minutes.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 20)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_stream_operator_records_total",
			Help: "Records into each operator.",
		}, []string{"operator"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_stream_late_records_total",
			Help: "Records dropped from windowed aggregations because all their windows had closed (sent to the Late stream).",
		}, []string{"operator"}),
		wmLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_stream_watermark_lag_seconds",
			Help: "Wall-clock time minus the task's event-time watermark, when it last moved.",
		}, []string{"task"}),
		commitLat: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_stream_commit_seconds",
			Help:    "Time to commit: produce flush of outputs, changelogs and markers, then the offset commit (exactly-once: the transaction's end).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		aborts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_stream_transaction_aborts_total",
			Help: "Exactly-once transactions aborted (rebalance, fencing, error), each rolling the tasks back to their last commit.",
		}),
	}
	m.sinkRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_stream_sink_records_total",
		Help: "Records written by the topology to each output or repartition topic.",
	}, []string{"topic"})
	m.batchLat = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "weir_stream_process_batch_seconds",
		Help:    "Time to process one polled batch of records (up to 1000), outputs handed to the producer.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	})
	m.e2eEvent = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "weir_stream_e2e_event_time_seconds",
		Help:    "Wall clock at processing minus the record's event time; one record sampled per task and polled batch.",
		Buckets: latencyBuckets,
	}, []string{"subtopology"})
	m.e2eAppend = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "weir_stream_e2e_append_time_seconds",
		Help:    "Wall clock at processing minus the record's Kafka timestamp (append time on LogAppendTime topics); one record sampled per task and polled batch.",
		Buckets: latencyBuckets,
	}, []string{"subtopology"})
	m.stateEntries = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "weir_stream_state_entries",
		Help: "Entries in each task's store, at the last commit (stores that count them).",
	}, []string{"task", "store"})
	m.stateBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "weir_stream_state_bytes",
		Help: "Bytes of each task's store at the last commit: keys and values in memory, or disk usage plus pending changes (pebble).",
	}, []string{"task", "store"})
	m.restored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_stream_restore_records_total",
		Help: "Changelog records read back into a task's store.",
	}, []string{"task", "store"})
	m.restoreLeft = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "weir_stream_restore_remaining_records",
		Help: "Changelog offsets left to restore for a task's store; 0 once restored.",
	}, []string{"task", "store"})
	for _, c := range []prometheus.Collector{m.records, m.late, m.wmLag, m.commitLat, m.aborts, m.sinkRecords, m.batchLat,
		m.e2eEvent, m.e2eAppend, m.stateEntries, m.stateBytes, m.restored, m.restoreLeft} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// in returns the counter of records into an operator (nil: no metrics).
func (m *metrics) in(op string) prometheus.Counter {
	if m == nil {
		return nil
	}
	return m.records.WithLabelValues(op)
}

func (m *metrics) lateRecord(op string) {
	if m != nil {
		m.late.WithLabelValues(op).Inc()
	}
}

func (m *metrics) watermark(id TaskID, wm, now int64) {
	if m != nil && wm != maxTime && now != 0 {
		m.wmLag.WithLabelValues(id.String()).Set(float64(now-wm) / 1000)
	}
}

func (m *metrics) forget(id TaskID) {
	if m != nil {
		m.wmLag.DeleteLabelValues(id.String())
		task := prometheus.Labels{"task": id.String()}
		m.stateEntries.DeletePartialMatch(task)
		m.stateBytes.DeletePartialMatch(task)
		m.restoreLeft.DeletePartialMatch(task)
	}
}

// sink returns the counter of records written to a topic (nil: no
// metrics).
func (m *metrics) sink(topic string) prometheus.Counter {
	if m == nil {
		return nil
	}
	c, ok := m.sinkByTopic[topic]
	if !ok {
		if m.sinkByTopic == nil {
			m.sinkByTopic = map[string]prometheus.Counter{}
		}
		c = m.sinkRecords.WithLabelValues(topic)
		m.sinkByTopic[topic] = c
	}
	return c
}

func (m *metrics) batch(seconds float64) {
	if m != nil {
		m.batchLat.Observe(seconds)
	}
}

// e2e observes the latencies of a sampled record, in ms.
func (m *metrics) e2e(sub string, eventMs, appendMs int64) {
	if m != nil {
		m.e2eEvent.WithLabelValues(sub).Observe(max(float64(eventMs)/1000, 0))
		m.e2eAppend.WithLabelValues(sub).Observe(max(float64(appendMs)/1000, 0))
	}
}

func (m *metrics) stateSize(id TaskID, store string, entries, bytes int64) {
	if m == nil {
		return
	}
	if entries >= 0 {
		m.stateEntries.WithLabelValues(id.String(), store).Set(float64(entries))
	}
	m.stateBytes.WithLabelValues(id.String(), store).Set(float64(bytes))
}

// restore counts n records restored, remaining left.
func (m *metrics) restore(id TaskID, store string, n int, remaining int64) {
	if m != nil {
		m.restored.WithLabelValues(id.String(), store).Add(float64(n))
		m.restoreLeft.WithLabelValues(id.String(), store).Set(float64(max(remaining, 0)))
	}
}

func (m *metrics) commit(seconds float64) {
	if m != nil {
		m.commitLat.Observe(seconds)
	}
}

func (m *metrics) abort() {
	if m != nil {
		m.aborts.Inc()
	}
}
