package main

import (
	"context"
	"fmt"
	"strconv"
)

// txnVariant is one run of the txn workload: idempotent produce (records
// 0) or transactions of records records, by producers clients (each its
// own transactional id), paired with the idempotent run of as many.
type txnVariant struct {
	key       string // metric prefix
	records   int
	producers int
	idem      string // the idempotent variant it is paired with
}

// One producer commits its transactions one after the other, so its rate
// is bound by the serial rounds of each (AddPartitionsToTxn, the flush,
// EndTxn and its fsyncs); four producers show how much of that the broker
// overlaps, against four idempotent producers.
var txnVariants = []txnVariant{{"idem", 0, 1, ""}, {"t100", 100, 1, "idem"}, {"t1000", 1000, 1, "idem"},
	{"idem4", 0, 4, ""}, {"t1000x4", 1000, 4, "idem4"}}

var txnMetrics = []metric{
	{key: "idem_rps", label: "idempotent rec/s"},
	{key: "idem_mbps", label: "idempotent MB/s"},
	{key: "t100_rps", label: "100/txn rec/s"},
	{key: "t100_p50", label: "100/txn commit p50 ms", lowerBetter: true},
	{key: "t100_p99", label: "100/txn commit p99 ms", lowerBetter: true},
	{key: "t1000_rps", label: "1000/txn rec/s"},
	{key: "t1000_p50", label: "1000/txn commit p50 ms", lowerBetter: true},
	{key: "t1000_p99", label: "1000/txn commit p99 ms", lowerBetter: true},
	{key: "t100_vs_idem", label: "100/txn ÷ idempotent"},
	{key: "t1000_vs_idem", label: "1000/txn ÷ idempotent"},
	{key: "idem4_rps", label: "4 producers: idempotent rec/s"},
	{key: "t1000x4_rps", label: "4 producers: 1000/txn rec/s"},
	{key: "t1000x4_p50", label: "4 producers: 1000/txn commit p50 ms", lowerBetter: true},
	{key: "t1000x4_p99", label: "4 producers: 1000/txn commit p99 ms", lowerBetter: true},
	{key: "t1000x4_vs_idem4", label: "4 producers: 1000/txn ÷ idempotent"},
}

// rotated returns vs starting at the (rep-1)th, so that over repetitions
// each variant runs first, second and last on a broker: none gains from
// always meeting the emptiest one.
func rotated[T any](vs []T, rep int) []T {
	if len(vs) == 0 {
		return nil
	}
	i := (rep - 1) % len(vs)
	if i < 0 {
		i += len(vs)
	}
	return append(append([]T(nil), vs[i:]...), vs[:i]...)
}

// txnRun measures idempotent produce and 100- and 1,000-record
// transactions on one broker, each variant on its own topic. The ratios
// pair a transactional run with the idempotent one on the same broker. A
// variant the target cannot run is left out of its values (n/a in the
// table) and logged, not failed: a peer may lack transactions.
func txnRun(ctx context.Context, h *harness, s settings, p *proc, rep int) (map[string]float64, error) {
	vals := map[string]float64{}
	for _, v := range rotated(txnVariants, rep) {
		args := []string{"produce", "-t", "bench-" + v.key, "-p", strconv.Itoa(s.partitions), "-s", strconv.Itoa(s.recordSize),
			"-d", s.duration.String(), "--producers", strconv.Itoa(v.producers)}
		if v.records > 0 {
			args = append(args, "--txn-records", strconv.Itoa(v.records), "--transactional-id", "bench-"+v.key)
		}
		r, err := h.bench(ctx, p.addr, args...)
		if err == nil && v.records > 0 && (r.Produce.Transactions == nil || r.Produce.Transactions.CommitLatency == nil) {
			err = fmt.Errorf("weir bench reported no committed transactions")
		}
		if err != nil {
			if v.key == "idem" {
				return nil, err
			}
			fmt.Fprintf(h.log, "   %-12s %s: %v (reported as n/a)\n", p.kind, v.key, err)
			continue
		}
		vals[v.key+"_rps"] = r.Produce.RecordsPerSec
		if v.records == 0 {
			vals[v.key+"_mbps"] = r.Produce.MBPerSec
			continue
		}
		lat := r.Produce.Transactions.CommitLatency
		vals[v.key+"_p50"], vals[v.key+"_p99"] = lat.P50, lat.P99
	}
	for _, v := range txnVariants {
		t, ok1 := vals[v.key+"_rps"]
		i, ok2 := vals[v.idem+"_rps"]
		if v.records > 0 && ok1 && ok2 && i > 0 {
			vals[v.key+"_vs_"+v.idem] = t / i
		}
	}
	return vals, nil
}
