package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latencyHist records latencies in microseconds, 1µs to 1h, to three
// significant digits (an HDR histogram: percentiles within 0.1%).
type latencyHist struct{ h *hdrhistogram.Histogram }

const maxLatencyMicros = int64(time.Hour / time.Microsecond)

func newLatencyHist() *latencyHist {
	return &latencyHist{h: hdrhistogram.New(1, maxLatencyMicros, 3)}
}

// record adds one latency; values outside the range are clamped to it.
func (l *latencyHist) record(d time.Duration) {
	us := min(max(d.Microseconds(), 1), maxLatencyMicros)
	_ = l.h.RecordValue(us)
}

// latencyStats are the percentiles of a run, in milliseconds.
type latencyStats struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func (l *latencyHist) stats() *latencyStats {
	if l == nil || l.h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return round3(float64(us) / 1000) }
	return &latencyStats{
		Count: l.h.TotalCount(),
		Mean:  round3(l.h.Mean() / 1000),
		P50:   ms(l.h.ValueAtQuantile(50)),
		P90:   ms(l.h.ValueAtQuantile(90)),
		P99:   ms(l.h.ValueAtQuantile(99)),
		P999:  ms(l.h.ValueAtQuantile(99.9)),
		Max:   ms(l.h.Max()),
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// phaseReport is the throughput (and, for produce, ack latency) of one
// side of a run.
type phaseReport struct {
	Records       int64         `json:"records"`
	Bytes         int64         `json:"bytes"`
	Seconds       float64       `json:"seconds"`
	RecordsPerSec float64       `json:"records_per_sec"`
	MBPerSec      float64       `json:"mb_per_sec"` // 10^6 bytes of keys and values per second
	Errors        int64         `json:"errors"`
	FirstError    string        `json:"first_error,omitempty"`
	Latency       *latencyStats `json:"latency_ms,omitempty"`
	// Transactions, with --txn-records: Records and Bytes then count
	// committed records only.
	Transactions *txnReport `json:"transactions,omitempty"`
}

// txnReport sums up a transactional produce run.
type txnReport struct {
	RecordsPerTxn int           `json:"records_per_txn"`
	Committed     int64         `json:"committed"`
	Aborted       int64         `json:"aborted"`
	CommitLatency *latencyStats `json:"commit_latency_ms,omitempty"` // EndTxn (commit) round trips
}

func newPhaseReport(records, bytes int64, elapsed time.Duration, errs int64, firstErr string, lat *latencyStats) *phaseReport {
	p := &phaseReport{Records: records, Bytes: bytes, Seconds: round3(elapsed.Seconds()), Errors: errs, FirstError: firstErr, Latency: lat}
	if s := elapsed.Seconds(); s > 0 {
		p.RecordsPerSec = math.Round(float64(records) / s)
		p.MBPerSec = math.Round(float64(bytes)/s/1e4) / 100
	}
	return p
}

// benchSettings echoes what was measured, for the record.
type benchSettings struct {
	Brokers     string  `json:"brokers"`
	Topic       string  `json:"topic"`
	Partitions  int32   `json:"partitions"`
	RecordSize  int     `json:"record_size"`
	Records     int64   `json:"records,omitempty"`
	Duration    string  `json:"duration,omitempty"`
	Rate        float64 `json:"rate"` // records/s in total; 0 = as fast as possible
	Producers   int     `json:"producers"`
	Consumers   int     `json:"consumers"`
	Acks        string  `json:"acks"`
	Compression string  `json:"compression"`
	Keys        int     `json:"keys"`
	MaxInFlight int     `json:"max_in_flight"`
	Group       string  `json:"group,omitempty"`
	TxnRecords  int     `json:"txn_records,omitempty"`
	TxnID       string  `json:"transactional_id,omitempty"`
}

// benchReport is the final summary of weir bench, as printed by --format
// json.
type benchReport struct {
	Mode     string          `json:"mode"`
	Settings benchSettings   `json:"settings"`
	Produce  *phaseReport    `json:"produce,omitempty"`
	Consume  *phaseReport    `json:"consume,omitempty"`
	EndToEnd *latencyStats   `json:"end_to_end_latency_ms,omitempty"`
	Delivery *deliveryReport `json:"delivery,omitempty"`
}

// writeText prints the summary as aligned tables.
func (r *benchReport) writeText(w io.Writer) error {
	s := r.Settings
	rate := "max"
	if s.Rate > 0 {
		rate = fmt.Sprintf("%g/s", s.Rate)
	}
	keys := "none"
	if s.Keys > 0 {
		keys = fmt.Sprint(s.Keys)
	}
	inflight := "unlimited"
	if s.MaxInFlight > 0 {
		inflight = fmt.Sprint(s.MaxInFlight)
	}
	fmt.Fprintf(w, "weir bench %s: topic %s (%d partitions) on %s\n", r.Mode, s.Topic, s.Partitions, s.Brokers)
	if r.Mode != "consume" {
		fmt.Fprintf(w, "records of %d B, acks %s, compression %s, rate %s, keys %s, in flight %s, %d producer(s)",
			s.RecordSize, s.Acks, s.Compression, rate, keys, inflight, s.Producers)
		if s.Consumers > 0 {
			fmt.Fprintf(w, ", %d consumer(s)", s.Consumers)
		}
	} else {
		fmt.Fprintf(w, "%d consumer(s)", s.Consumers)
	}
	if s.Group != "" {
		fmt.Fprintf(w, " in group %s", s.Group)
	}
	if s.TxnRecords > 0 {
		fmt.Fprintf(w, ", transactions of %d records (%s-N)", s.TxnRecords, s.TxnID)
	}
	fmt.Fprint(w, "\n\n")

	t := newTable(w, "PHASE", "RECORDS", "SECONDS", "RECORDS/S", "MB/S", "P50 MS", "P90 MS", "P99 MS", "P99.9 MS", "MAX MS", "ERRORS")
	lat := func(l *latencyStats) []any {
		if l == nil {
			return []any{"-", "-", "-", "-", "-"}
		}
		return []any{ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max)}
	}
	phase := func(name string, p *phaseReport, l *latencyStats) {
		row := []any{name, p.Records, p.Seconds, int64(p.RecordsPerSec), fmt.Sprintf("%.2f", p.MBPerSec)}
		row = append(row, lat(l)...)
		t.row(append(row, p.Errors)...)
	}
	if r.Produce != nil {
		phase("produce (ack)", r.Produce, r.Produce.Latency)
	}
	if r.Consume != nil {
		phase("consume", r.Consume, nil)
	}
	if r.EndToEnd != nil {
		t.row(append([]any{"end-to-end", r.EndToEnd.Count, "-", "-", "-"}, append(lat(r.EndToEnd), "-")...)...)
	}
	if p := r.Produce; p != nil && p.Transactions != nil {
		// RECORDS counts committed transactions here.
		tx := p.Transactions
		t.row(append([]any{"txn commit", tx.Committed, "-", "-", "-"}, append(lat(tx.CommitLatency), tx.Aborted)...)...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, p := range []*phaseReport{r.Produce, r.Consume} {
		if p != nil && p.FirstError != "" {
			fmt.Fprintf(w, "first error: %s\n", p.FirstError)
		}
	}
	if p := r.Produce; p != nil && p.Transactions != nil {
		tx := p.Transactions
		fmt.Fprintf(w, "transactions of %d records: %d committed, %d aborted; produce counts committed records; txn commit is the EndTxn round trip (ERRORS: aborted)\n",
			tx.RecordsPerTxn, tx.Committed, tx.Aborted)
	}
	if d := r.Delivery; d != nil {
		verdict := "OK"
		if !d.ok() {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "\ndelivery %s: %d sent, %d acknowledged, %d failed, %d consumed; lost %d, duplicated %d, out of order %d",
			verdict, d.Sent, d.Acked, d.Failed, d.Consumed, d.Lost, d.Duplicates, d.Reordered)
		if d.Unacked > 0 {
			fmt.Fprintf(w, "; %d consumed without acknowledgement", d.Unacked)
		}
		if d.Foreign > 0 {
			fmt.Fprintf(w, "; %d foreign records ignored", d.Foreign)
		}
		fmt.Fprintln(w)
		if len(d.Partitions) > 0 {
			fmt.Fprintln(w)
			pt := newTable(w, "PARTITION", "ACKNOWLEDGED", "CONSUMED", "LOST", "DUPLICATED", "OUT OF ORDER")
			for _, p := range d.Partitions {
				pt.row(p.Partition, p.Acked, p.Consumed, p.Lost, p.Duplicates, p.Reordered)
			}
			return pt.flush()
		}
	}
	return nil
}

// ms renders milliseconds with three significant-ish digits.
func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}
