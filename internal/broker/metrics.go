package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/metrics"
)

// trafficMetrics are the per-topic records and bytes in and out, counted
// at the gate (in) and at the consumer reads (out), so every protocol's
// traffic is in them.
type trafficMetrics struct {
	bytesIn, recsIn, bytesOut, recsOut *prometheus.CounterVec
}

func newTrafficMetrics(r *metrics.Registry) *trafficMetrics {
	return &trafficMetrics{
		bytesIn: r.CounterVec("weir_topic_bytes_in_total",
			"Record batch bytes appended, by topic, whatever the protocol (Kafka Produce, CloudEvents); idempotent retries and internal topics' own writes by the node are counted too, duplicates are not.", "topic"),
		recsIn: r.CounterVec("weir_topic_records_in_total",
			"Records appended, by topic, whatever the protocol; duplicates of idempotent retries are not counted.", "topic"),
		bytesOut: r.CounterVec("weir_topic_bytes_out_total",
			"Record batch bytes read by consumers (Kafka Fetch, CloudEvents pull, SSE and push), by topic.", "topic"),
		recsOut: r.CounterVec("weir_topic_records_out_total",
			"Records in the batches read by consumers, by topic (a first batch may start before the read offset).", "topic"),
	}
}

// topicMetrics are one topic's children of the traffic families, resolved
// once when the topic is opened.
type topicMetrics struct {
	bytesIn, recsIn, bytesOut, recsOut prometheus.Counter
}

func (m *trafficMetrics) topic(name string) *topicMetrics {
	return &topicMetrics{
		bytesIn:  m.bytesIn.WithLabelValues(name),
		recsIn:   m.recsIn.WithLabelValues(name),
		bytesOut: m.bytesOut.WithLabelValues(name),
		recsOut:  m.recsOut.WithLabelValues(name),
	}
}

// forget drops a deleted topic's series, so a scrape does not report it
// forever.
func (m *trafficMetrics) forget(name string) {
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.recsIn, m.bytesOut, m.recsOut} {
		v.DeleteLabelValues(name)
	}
}

func (m *topicMetrics) in(bytes int, records int64) {
	if m == nil {
		return
	}
	m.bytesIn.Add(float64(bytes))
	m.recsIn.Add(float64(records))
}

// out counts the whole batches of data.
func (m *topicMetrics) out(data []byte) {
	if m == nil || len(data) == 0 {
		return
	}
	var records int64
	for rest := data; len(rest) >= batch.HeaderSize; {
		h, err := batch.ParseHeader(rest)
		if err != nil || h.Size() > len(rest) {
			break
		}
		records += int64(h.NumRecords)
		rest = rest[h.Size():]
	}
	m.bytesOut.Add(float64(len(data)))
	m.recsOut.Add(float64(records))
}
