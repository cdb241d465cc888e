package kafka

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/txn"
	"github.com/weirhq/weir/internal/vfs"
)

func txnTestRecords() []txn.Record {
	now := time.UnixMilli(1767225600000)
	return []txn.Record{
		{TxnID: "t1", Meta: &txn.Metadata{ProducerID: 7, Epoch: 0, LastProducerID: -1, LastEpoch: -1, Timeout: time.Minute,
			State: txn.Empty, UpdateTime: now}},
		{TxnID: "t1", Meta: &txn.Metadata{ProducerID: 7, Epoch: 0, LastProducerID: -1, LastEpoch: -1, Timeout: time.Minute,
			State: txn.Ongoing, StartTime: now, UpdateTime: now.Add(time.Second),
			Partitions: []txn.TopicPartition{{Topic: "a", Partition: 0}, {Topic: "a", Partition: 3}, {Topic: "b", Partition: 1}},
			Groups:     []string{"billing", "ledger"}}},
		{TxnID: "t1", Meta: &txn.Metadata{ProducerID: 7, Epoch: 0, LastProducerID: -1, LastEpoch: -1, Timeout: time.Minute,
			State: txn.PrepareCommit, StartTime: now, UpdateTime: now.Add(2 * time.Second),
			Partitions: []txn.TopicPartition{{Topic: "a", Partition: 0}}, Groups: []string{"billing"}}},
		{TxnID: "t2", Meta: &txn.Metadata{ProducerID: 9, Epoch: 0, LastProducerID: 8, LastEpoch: 32766, Timeout: 15 * time.Minute,
			State: txn.CompleteAbort, StartTime: now, UpdateTime: now}},
		{TxnID: "t3"}, // tombstone
	}
}

// TestTxnRecordRoundTrip encodes every kind of record and decodes it back
// unchanged, and checks that Kafka's reading of the value sees the
// transaction's partitions, __consumer_offsets included for its groups.
func TestTxnRecordRoundTrip(t *testing.T) {
	for _, r := range txnTestRecords() {
		k, v := encodeTxnRecord(r)
		got, ok := decodeTxnRecord(k, v)
		if !ok {
			t.Fatalf("%s: does not decode", r.TxnID)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v %+v\nwant %+v %+v", got, got.Meta, r, r.Meta)
		}
	}
	_, v := encodeTxnRecord(txnTestRecords()[1])
	var kv kmsg.TxnMetadataValue
	if err := kv.ReadFrom(v); err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, tp := range kv.Topics {
		topics = append(topics, tp.Topic)
	}
	if kv.State != kmsg.TransactionState(txn.Ongoing) || kv.ProducerID != 7 || kv.TimeoutMillis != 60000 ||
		!reflect.DeepEqual(topics, []string{"a", "b", OffsetsTopic}) {
		t.Fatalf("Kafka reads %+v", kv)
	}
}

// TestTxnStore appends records through a real broker's internal log of
// __transaction_state and replays them, then drives a coordinator restart
// through it: a prepared commit's markers come back.
func TestTxnStore(t *testing.T) {
	b, err := broker.Open(broker.Options{FS: vfs.NewMem(), Dir: "/data", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l, err := b.OpenInternalLog(TransactionStateTopic)
	if err != nil {
		t.Fatal(err)
	}
	s := NewTxnStore(l)
	recs := txnTestRecords()
	for _, part := range [][]txn.Record{recs[:2], recs[2:]} {
		wait, err := s.Append(part)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var got []txn.Record
	if err := s.Load(func(r txn.Record) { got = append(got, r) }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("replayed %d records, want %d:\n%+v", len(got), len(recs), got)
	}

	m := txn.NewMachine(txn.Config{}, b)
	a := m.Load(got)
	if len(a.Markers) != 1 || !a.Markers[0].Commit || a.Markers[0].ProducerID != 7 ||
		!reflect.DeepEqual(a.Markers[0].Partitions, []txn.TopicPartition{{Topic: "a", Partition: 0}}) ||
		len(a.Offsets) != 1 || a.Offsets[0].Group != "billing" {
		t.Fatalf("re-driven actions %+v", a)
	}
	r := m.MarkersWritten(time.UnixMilli(1767225700000), "t1", 7, 0)
	if r.Err != nil || len(r.Persist) != 1 || r.Persist[0].Meta.State != txn.CompleteCommit {
		t.Fatalf("MarkersWritten: %+v", r)
	}
}
