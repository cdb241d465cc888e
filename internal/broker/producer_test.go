package broker

import (
	"context"
	"errors"
	"testing"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/commitlog"
)

// TestProducers checks the producer state DescribeProducers reports, live
// and rebuilt from the log at open.
func TestProducers(t *testing.T) {
	f := newTxnFixture(t, nil)
	const ts = 1_700_000_000_000
	produce := func(pid int64, epoch int16, seq int32, txn bool, n int) {
		t.Helper()
		a, err := f.p.Produce(mkBatch(t, n, batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: epoch,
			BaseSequence: seq, Transactional: txn, BaseTimestamp: ts}))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.p.WaitDurable(context.Background(), a.LastOffset+1); err != nil {
			t.Fatal(err)
		}
	}
	f.produce(-1, false, 2)    // 0-1: no producer
	produce(7, 0, 0, true, 3)  // 2-4: opens 7's transaction
	produce(9, 2, 0, false, 2) // 5-6: idempotent
	produce(7, 0, 3, true, 1)  // 7: same transaction
	want := []ProducerInfo{
		{ProducerID: 7, Epoch: 0, LastSequence: 3, LastTimestamp: ts, CoordinatorEpoch: -1, TxnStartOffset: 2},
		{ProducerID: 9, Epoch: 2, LastSequence: 1, LastTimestamp: ts, CoordinatorEpoch: -1, TxnStartOffset: -1},
	}
	check := func(when string) {
		t.Helper()
		got := f.p.Producers()
		if len(got) != len(want) {
			t.Fatalf("%s: Producers() = %+v, want %+v", when, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: producer %d = %+v, want %+v", when, i, got[i], want[i])
			}
		}
	}
	check("open transaction")

	// An abort marker with a newer epoch and coordinator epoch 3 (what
	// `weir txn abort` sends) ends the transaction.
	wait := f.b.AppendTxnMarkers([]TxnMarker{{ProducerID: 7, ProducerEpoch: 1, CoordinatorEpoch: 3,
		Partitions: []TopicPartition{{Topic: "tx", Partition: 0}, {Topic: "nope", Partition: 0}}}})
	res := wait(context.Background())
	if len(res) != 2 || res[0].Err != nil || res[0].Offset != 8 || !errors.Is(res[1].Err, ErrUnknownTopicOrPartition) {
		t.Fatalf("AppendTxnMarkers = %+v", res)
	}
	if f.p.LastStableOffset() != 9 {
		t.Fatalf("LSO %d after the abort", f.p.LastStableOffset())
	}
	got := f.p.Producers()[0]
	if got.Epoch != 1 || got.LastSequence != -1 || got.CoordinatorEpoch != 3 || got.TxnStartOffset != -1 || got.LastTimestamp < ts {
		t.Fatalf("after the marker: %+v", got)
	}
	want[0] = got

	// Stale epochs are refused with Kafka's errors.
	if _, err := f.b.WriteMarker(Marker{Topic: "tx", ProducerID: 7, ProducerEpoch: 0, CoordinatorEpoch: 3}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Errorf("stale producer epoch: %v", err)
	}
	if _, err := f.b.WriteMarker(Marker{Topic: "tx", ProducerID: 7, ProducerEpoch: 1, CoordinatorEpoch: 2}); !errors.Is(err, ErrTransactionCoordinatorFenced) {
		t.Errorf("stale coordinator epoch: %v", err)
	}
	check("after the marker")

	f.b.Close()
	f.reopen(f.fs, commitlog.Always)
	check("rebuilt at open")
}
