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
}

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
	for _, c := range []prometheus.Collector{m.records, m.late, m.wmLag, m.commitLat, m.aborts} {
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
