package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRotated(t *testing.T) {
	vs := []string{"a", "b", "c"}
	for rep, want := range map[int][]string{1: {"a", "b", "c"}, 2: {"b", "c", "a"}, 3: {"c", "a", "b"}, 4: {"a", "b", "c"}} {
		if got := rotated(vs, rep); !slices.Equal(got, want) {
			t.Errorf("rotated(rep %d) = %v, want %v", rep, got, want)
		}
	}
	if !slices.Equal(vs, []string{"a", "b", "c"}) {
		t.Errorf("rotated changed its input: %v", vs)
	}
}

// fakeWeir writes a stand-in for the weir CLI that answers `weir bench
// produce` with the JSON of a run: idempotent at 1000 records/s (4000 with
// 4 producers), 100-record transactions at 500 (commit p50 2 ms, p99 9
// ms), and 1,000-record ones failing, as a peer without transactions
// would.
func fakeWeir(t *testing.T) string {
	bin, _ := fakeWeirScript(t, `
*"--txn-records 1000 "*) echo "INVALID_TXN_STATE" >&2; exit 1 ;;
*"--txn-records 100 "*) echo '{"produce":{"records":500,"records_per_sec":500,"mb_per_sec":0.51,"latency_ms":{"p50":1},
  "transactions":{"committed":5,"aborted":0,"commit_latency_ms":{"p50":2,"p99":9}}}}' ;;
*"--producers 4"*) echo '{"produce":{"records":4000,"records_per_sec":4000,"mb_per_sec":4.1,"latency_ms":{"p50":1}}}' ;;
*"--producers 1"*) echo '{"produce":{"records":1000,"records_per_sec":1000,"mb_per_sec":1.02,"latency_ms":{"p50":1}}}' ;;
*) echo "no --producers" >&2; exit 1 ;;
`)
	return bin
}

// fakeWeirScript writes a stand-in for the weir CLI: a shell script that
// appends its arguments to the file args and answers by the case
// branches given (patterns over "$*").
func fakeWeirScript(t *testing.T, cases string) (bin, args string) {
	t.Helper()
	dir := t.TempDir()
	args = filepath.Join(dir, "args")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\ncase \"$*\" in%sesac\n", args, cases)
	bin = filepath.Join(dir, "weir")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, args
}

// TestTxnRun: one broker's three runs become its values, ratios paired on
// the same broker, and a variant the target cannot run is left out
// (logged), not failed.
func TestTxnRun(t *testing.T) {
	var log strings.Builder
	h := &harness{weir: fakeWeir(t), log: &log}
	s := settings{partitions: 16, recordSize: 1024, duration: time.Second}
	vals, err := txnRun(context.Background(), h, s, &proc{kind: "kfake-mem", addr: "127.0.0.1:1"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"idem_rps": 1000, "idem_mbps": 1.02, "t100_rps": 500, "t100_p50": 2, "t100_p99": 9, "t100_vs_idem": 0.5,
		"idem4_rps": 4000, "idem4_mbps": 4.1}
	if len(vals) != len(want) {
		t.Errorf("values %v, want %v", vals, want)
	}
	for k, v := range want {
		if vals[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, vals[k], v, vals)
		}
	}
	if !strings.Contains(log.String(), "kfake-mem") || !strings.Contains(log.String(), "t1000") || !strings.Contains(log.String(), "n/a") {
		t.Errorf("the failed variant is not logged: %q", log.String())
	}
}

// TestReportTxn: the txn table lists n/a where a target measured nothing
// and the paired ratio per run; the targets compare committed
// transactional records/s with idempotent on the same broker.
func TestReportTxn(t *testing.T) {
	s := settings{reps: 3, partitions: 16, recordSize: 1024, duration: 5 * time.Second}
	var wl workload
	for _, w := range workloads(s) {
		if w.name == "txn" {
			wl = w
		}
	}
	if wl.run == nil {
		t.Fatal("no txn workload")
	}
	r := report{s: s, workloads: []workload{wl}}
	for rep, v := range [][2]float64{{100000, 85000}, {90000, 72000}, {110000, 77000}} {
		r.results = append(r.results,
			result{"txn", "weir-always", rep + 1, map[string]float64{"idem_rps": v[0], "t1000_rps": v[1], "t1000_vs_idem": v[1] / v[0], "t1000_p50": 2}},
			result{"txn", "kfake-sync", rep + 1, map[string]float64{"idem_rps": 50000, "t1000_rps": 40000, "t1000_vs_idem": 0.8, "t1000_p50": 5}})
	}
	var b strings.Builder
	if err := r.write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| Target | idempotent rec/s | idempotent MB/s | 100/txn rec/s |",
		"| 1000/txn ÷ idempotent per run |",
		// medians: idempotent 100000, 1000/txn 77000; ratios per run 0.85, 0.8, 0.7.
		"| weir-always | 100000 | n/a | n/a | n/a | n/a | 77000 | 2 | n/a | n/a | 0.8 | n/a | n/a | n/a | n/a | n/a | 0.85, 0.8, 0.7 |",
		"| kfake-mem | n/a |",
		// The goal is the median of the paired per-run ratios (0.8), not
		// the ratio of medians (0.77).
		"| Transactions of 1,000 records vs idempotent produce (Weir, durable) | 77000 vs 100000 rec/s (ratio: median of runs) | 0.80× | ≥ 0.80× | yes |",
		"| Transactions of 1,000 records vs idempotent produce (kfake+SyncWrites) | 40000 vs 50000 rec/s (ratio: median of runs) | 0.80× | (context) | – |",
		"| Transactions of 1,000 records: Weir vs kfake+SyncWrites | 77000 vs 40000 rec/s | 1.93× | (peer) | – |",
		"| Commit p50, 1,000-record transactions: Weir vs kfake+SyncWrites | 2 vs 5 ms | 0.40× | (peer) | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "100 records vs idempotent") {
		t.Errorf("a comparison without measurements is listed:\n%s", out)
	}
}
