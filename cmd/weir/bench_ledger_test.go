package main

import (
	"reflect"
	"testing"
	"time"
)

func TestStampRoundTrip(t *testing.T) {
	b := make([]byte, 100)
	want := benchStamp{run: 7, producer: 3, seq: 1<<33 + 5, sentNs: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).UnixNano()}
	want.put(b)
	got, ok := parseStamp(b)
	if !ok || got != want {
		t.Fatalf("parseStamp = %+v, %v; want %+v", got, ok, want)
	}
	for _, bad := range [][]byte{nil, b[:stampSize-1], []byte("hello, this is not a bench record at all")} {
		if _, ok := parseStamp(bad); ok {
			t.Errorf("parseStamp(%q) accepted", bad)
		}
	}
}

// deliver feeds the ledger a clean run: two producers, n records each,
// acknowledged and consumed in order, producer p writing to partition p.
func deliver(l *ledger, n uint64, skip func(p uint32, seq uint64) bool) {
	for p := uint32(0); p < 2; p++ {
		for seq := uint64(0); seq < n; seq++ {
			l.sent(p, seq)
			l.acked(p, seq, int32(p))
		}
	}
	for p := uint32(0); p < 2; p++ {
		for seq := uint64(0); seq < n; seq++ {
			if skip == nil || !skip(p, seq) {
				l.consumed(p, seq, int32(p))
			}
		}
	}
}

func TestLedgerClean(t *testing.T) {
	l := newLedger(2)
	deliver(l, 100, nil)
	r := l.report()
	want := deliveryReport{Sent: 200, Acked: 200, Consumed: 200, Partitions: []partitionDelivery{}}
	if !reflect.DeepEqual(r, want) || !r.ok() {
		t.Fatalf("report %+v, want %+v", r, want)
	}
}

func TestLedgerPlantedLoss(t *testing.T) {
	l := newLedger(2)
	// Producer 1 loses sequences 10-14 on partition 1 (a truncated log).
	deliver(l, 100, func(p uint32, seq uint64) bool { return p == 1 && seq >= 10 && seq < 15 })
	r := l.report()
	if r.Lost != 5 || r.Duplicates != 0 || r.Reordered != 0 || r.Consumed != 195 || r.ok() {
		t.Fatalf("report %+v: want 5 lost, 195 consumed", r)
	}
	want := []partitionDelivery{{Partition: 1, Acked: 100, Consumed: 95, Lost: 5}}
	if !reflect.DeepEqual(r.Partitions, want) {
		t.Fatalf("partitions %+v, want %+v", r.Partitions, want)
	}
}

func TestLedgerPlantedDuplicate(t *testing.T) {
	l := newLedger(2)
	deliver(l, 50, nil)
	l.consumed(0, 7, 0) // redelivered later: a duplicate, not a reorder
	l.consumed(0, 7, 0)
	r := l.report()
	if r.Duplicates != 2 || r.Lost != 0 || r.Reordered != 0 || r.Consumed != 100 {
		t.Fatalf("report %+v: want 2 duplicates only", r)
	}
	if len(r.Partitions) != 1 || r.Partitions[0].Partition != 0 || r.Partitions[0].Duplicates != 2 {
		t.Fatalf("partitions %+v", r.Partitions)
	}
}

func TestLedgerReorderAndFailures(t *testing.T) {
	l := newLedger(1)
	for seq := uint64(0); seq < 5; seq++ {
		l.sent(0, seq)
	}
	l.acked(0, 0, 0)
	l.acked(0, 1, 0)
	l.acked(0, 2, 0)
	l.failed(0, 3) // never acknowledged, yet written: consumed
	l.failed(0, 4) // never acknowledged, never written
	l.consumed(0, 0, 0)
	l.consumed(0, 2, 0)
	l.consumed(0, 1, 0) // after 2 on the same partition: out of order
	l.consumed(0, 3, 0)
	l.consumed(9, 1, 0) // a producer this run does not have
	r := l.report()
	want := deliveryReport{Sent: 5, Acked: 3, Failed: 2, Consumed: 4, Reordered: 1, Unacked: 1, Foreign: 1,
		Partitions: []partitionDelivery{{Partition: 0, Acked: 3, Consumed: 4, Reordered: 1}}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("report\n got %+v\nwant %+v", r, want)
	}
	// Order is per partition: the same producer may interleave across
	// partitions freely.
	l2 := newLedger(1)
	for seq, part := range []int32{0, 1, 0, 1} {
		l2.sent(0, uint64(seq))
		l2.acked(0, uint64(seq), part)
	}
	l2.consumed(0, 1, 1)
	l2.consumed(0, 3, 1)
	l2.consumed(0, 0, 0)
	l2.consumed(0, 2, 0)
	if r := l2.report(); !r.ok() || r.Consumed != 4 {
		t.Fatalf("interleaved partitions: %+v", r)
	}
}
