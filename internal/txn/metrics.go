package txn

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/internal/metrics"
)

// Outcomes of a transaction, the result label of weir_transactions_total.
const (
	outcomeCommitted = "committed" // EndTxn commit
	outcomeAborted   = "aborted"   // EndTxn abort
	outcomeTimedOut  = "timed_out" // aborted by the coordinator past its timeout
	outcomeFenced    = "fenced"    // aborted by InitProducerId of a newer producer
)

// serviceMetrics are the coordinator's metrics. The Machine stays pure:
// the Service's loop reads outcomes from the records it persists and the
// open transactions from the machine at each tick.
type serviceMetrics struct {
	ended  map[string]prometheus.Counter
	open   prometheus.Gauge
	oldest prometheus.Gauge
}

func newServiceMetrics(r *metrics.Registry) *serviceMetrics {
	total := r.CounterVec("weir_transactions_total",
		"Transactions decided by the coordinator, by result: committed or aborted by their producer, timed_out (aborted past the transaction timeout) or fenced (aborted when a new producer of the transactional id initialised). Counted once the decision (PrepareCommit or PrepareAbort) is durable; the markers follow.",
		"result")
	m := &serviceMetrics{ended: map[string]prometheus.Counter{},
		open: r.Gauge("weir_transactions_open",
			"Transactions begun and not yet completed (Ongoing, or decided with markers still being written): each holds the last stable offset of its partitions."),
		oldest: r.Gauge("weir_transactions_oldest_open_seconds",
			"Age of the oldest open transaction (now minus its start), 0 when none is open; updated every coordinator tick."),
	}
	for _, o := range []string{outcomeCommitted, outcomeAborted, outcomeTimedOut, outcomeFenced} {
		m.ended[o] = total.WithLabelValues(o)
	}
	return m
}

// decided counts the transactions records decide: a PrepareCommit record
// is a commit, a PrepareAbort one an abort for the reason given by the
// input that produced it (abort: outcomeAborted, outcomeTimedOut or
// outcomeFenced; "" when the input decides no abort).
func (m *serviceMetrics) decided(recs []Record, abort string) {
	for _, r := range recs {
		switch {
		case r.Meta == nil:
		case r.Meta.State == PrepareCommit:
			m.ended[outcomeCommitted].Inc()
		case r.Meta.State == PrepareAbort && abort != "":
			m.ended[abort].Inc()
		}
	}
}

// observe sets the open-transaction gauges from the machine at now.
func (m *serviceMetrics) observe(now time.Time, machine *Machine) {
	n, oldest := machine.Open()
	m.open.Set(float64(n))
	if n == 0 {
		m.oldest.Set(0)
		return
	}
	m.oldest.Set(max(now.Sub(oldest).Seconds(), 0))
}
