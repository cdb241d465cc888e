package txn

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weirhq/weir/internal/metrics"
)

// TestMetricsFromActions: the outcomes counted from the records the
// machine returns for EndTxn, Tick and a fencing InitProducerId, and the
// open transactions it reports.
func TestMetricsFromActions(t *testing.T) {
	r := metrics.NewBare()
	sm := newServiceMetrics(r)
	m := NewMachine(Config{}, &counter{next: 1})
	t0 := time.Unix(1000, 0)
	tp := []TopicPartition{{Topic: "t", Partition: 0}}
	start := func(id string, timeout time.Duration, at time.Time) (int64, int16) {
		t.Helper()
		res := m.InitProducerID(at, InitProducerIDRequest{TxnID: id, Timeout: timeout, ProducerID: -1, Epoch: -1})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if r := m.AddPartitions(at, AddPartitionsRequest{TxnID: id, ProducerID: res.ProducerID, Epoch: res.Epoch, Partitions: tp}); r.Err != nil {
			t.Fatal(r.Err)
		}
		return res.ProducerID, res.Epoch
	}
	pc, ec := start("commit", time.Minute, t0)
	pa, ea := start("abort", time.Minute, t0.Add(time.Second))
	start("slow", time.Second, t0.Add(2*time.Second))
	start("fenced", time.Minute, t0.Add(3*time.Second))

	sm.observe(t0.Add(10*time.Second), m)
	if got := testutil.ToFloat64(sm.open); got != 4 {
		t.Errorf("open = %v, want 4", got)
	}
	if got := testutil.ToFloat64(sm.oldest); got != 10 {
		t.Errorf("oldest open seconds = %v, want 10", got)
	}

	now := t0.Add(10 * time.Second)
	sm.decided(m.EndTxn(now, EndTxnRequest{TxnID: "commit", ProducerID: pc, Epoch: ec, Commit: true}).Persist, outcomeAborted)
	sm.decided(m.EndTxn(now, EndTxnRequest{TxnID: "abort", ProducerID: pa, Epoch: ea}).Persist, outcomeAborted)
	sm.decided(m.Tick(now).Persist, outcomeTimedOut)
	sm.decided(m.InitProducerID(now, InitProducerIDRequest{TxnID: "fenced", Timeout: time.Minute, ProducerID: -1, Epoch: -1}).Persist, outcomeFenced)
	for _, o := range []string{outcomeCommitted, outcomeAborted, outcomeTimedOut, outcomeFenced} {
		if got := testutil.ToFloat64(sm.ended[o]); got != 1 {
			t.Errorf("%s = %v, want 1", o, got)
		}
	}
	// All four are decided and still open until their markers are written.
	sm.observe(now, m)
	if got := testutil.ToFloat64(sm.open); got != 4 {
		t.Errorf("open while prepared = %v, want 4", got)
	}
	for _, id := range []string{"commit", "abort", "slow", "fenced"} {
		d, _ := m.Describe(id)
		if r := m.MarkersWritten(now, id, d.ProducerID, d.Epoch); r.Err != nil {
			t.Fatalf("%s: %v", id, r.Err)
		}
	}
	sm.observe(now, m)
	if testutil.ToFloat64(sm.open) != 0 || testutil.ToFloat64(sm.oldest) != 0 {
		t.Errorf("after completion: open %v, oldest %v", testutil.ToFloat64(sm.open), testutil.ToFloat64(sm.oldest))
	}
}
