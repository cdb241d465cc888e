package kafka

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/txn"
	"github.com/weirhq/weir/internal/vfs"
)

// TestTxnMarkers writes markers through the adapter onto a real broker:
// one error per partition, nil for the durable ones.
func TestTxnMarkers(t *testing.T) {
	b, err := broker.Open(broker.Options{FS: vfs.NewMem(), Dir: "/data", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateTopic("tx", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	pr := txnAppend(t, b, "tx", 9, 0, "a")
	errs := TxnMarkers{W: b}.WriteMarkers(context.Background(), []txn.MarkerWrite{{TxnID: "t", ProducerID: 9, Commit: true,
		Partitions: []txn.TopicPartition{{Topic: "tx", Partition: 0}, {Topic: "nope", Partition: 0}}}})
	if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], broker.ErrUnknownTopicOrPartition) {
		t.Fatalf("errors %v", errs)
	}
	if lso, hw := pr.Partition.LastStableOffset(), pr.Partition.HighWatermark(); lso != hw || hw != 2 {
		t.Fatalf("LSO %d, high watermark %d", lso, hw)
	}
}

// TestTxnServiceOnBroker runs the transaction coordinator on a real
// broker: its state on __transaction_state, its markers through the gate.
// A committed transaction becomes readable with read_committed; an
// aborted one is listed among the aborted transactions.
func TestTxnServiceOnBroker(t *testing.T) {
	b, err := broker.Open(broker.Options{FS: vfs.NewMem(), Dir: "/data", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l, err := b.OpenInternalLog(TransactionStateTopic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic("tx", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	store := &notifyingStore{Store: NewTxnStore(l), appends: make(chan []txn.Record, 100)}
	svc, err := txn.NewService(txn.ServiceOptions{Store: store, ProducerIDs: b, Markers: TxnMarkers{W: b},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	p, err := b.Partition("tx", 0)
	if err != nil {
		t.Fatal(err)
	}

	for _, commit := range []bool{true, false} {
		id := "commit"
		if !commit {
			id = "abort"
		}
		pid, epoch, err := svc.InitProducerID(ctx, txn.InitProducerIDRequest{TxnID: id, Timeout: time.Minute,
			ProducerID: -1, Epoch: -1, Version: 4})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.AddPartitions(ctx, txn.AddPartitionsRequest{TxnID: id, ProducerID: pid, Epoch: epoch,
			Partitions: []txn.TopicPartition{{Topic: "tx", Partition: 0}}, Version: 4}); err != nil {
			t.Fatal(err)
		}
		start := p.HighWatermark()
		raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli(), HasProducer: true,
			ProducerID: pid, ProducerEpoch: epoch, Transactional: true},
			[]batch.Record{{Value: []byte("x")}, {OffsetDelta: 1, Value: []byte("y")}})
		if err != nil {
			t.Fatal(err)
		}
		pr, err := b.Produce(broker.Write{Topic: "tx", Records: raw})
		if err != nil {
			t.Fatal(err)
		}
		if err := pr.Partition.WaitDurable(ctx, pr.LastOffset+1); err != nil {
			t.Fatal(err)
		}
		if lso := p.LastStableOffset(); lso != start {
			t.Fatalf("%s: LSO %d while open, want %d", id, lso, start)
		}
		if err := svc.EndTxn(ctx, txn.EndTxnRequest{TxnID: id, ProducerID: pid, Epoch: epoch, Commit: commit,
			Version: 4}); err != nil {
			t.Fatal(err)
		}
		// EndTxn answers once PrepareCommit/PrepareAbort is durable; the
		// markers follow, then the completion.
		want := txn.CompleteAbort
		if commit {
			want = txn.CompleteCommit
		}
		store.waitState(t, id, want)
		if lso, hw := p.LastStableOffset(), p.HighWatermark(); lso != hw || hw != pr.LastOffset+2 {
			t.Fatalf("%s: LSO %d, high watermark %d, want both %d", id, lso, hw, pr.LastOffset+2)
		}
		rd, err := p.ReadCommittedBuf(start, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := lastFetched(t, rd.Data); got != pr.LastOffset+1 {
			t.Fatalf("%s: read_committed read up to %d, want the marker at %d", id, got, pr.LastOffset+1)
		}
		if commit && len(rd.Aborted) != 0 {
			t.Fatalf("commit: aborted transactions %+v", rd.Aborted)
		}
		if !commit && (len(rd.Aborted) != 1 || rd.Aborted[0].ProducerID != pid || rd.Aborted[0].FirstOffset != start) {
			t.Fatalf("abort: aborted transactions %+v", rd.Aborted)
		}
	}

	// The coordinator's state is on __transaction_state: a new one loads it
	// and completes what Close cut short (the last completion may not have
	// been durable yet).
	svc.Close()
	store2 := &notifyingStore{Store: NewTxnStore(l), appends: make(chan []txn.Record, 100)}
	svc2, err := txn.NewService(txn.ServiceOptions{Store: store2, ProducerIDs: b, Markers: TxnMarkers{W: b},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc2.Close()
	list, err := svc2.List(ctx, txn.ListFilter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("reloaded %+v, %v", list, err)
	}
	for _, d := range list {
		switch d.State {
		case txn.PrepareAbort:
			store2.waitState(t, d.TxnID, txn.CompleteAbort)
		case txn.PrepareCommit:
			store2.waitState(t, d.TxnID, txn.CompleteCommit)
		}
	}
	list, err = svc2.List(ctx, txn.ListFilter{})
	if err != nil || len(list) != 2 || list[0].State != txn.CompleteAbort || list[1].State != txn.CompleteCommit {
		t.Fatalf("reloaded %+v, %v", list, err)
	}
}

// notifyingStore tells the test of every append.
type notifyingStore struct {
	txn.Store
	appends chan []txn.Record
}

func (s *notifyingStore) Append(recs []txn.Record) (func(context.Context) error, error) {
	wait, err := s.Store.Append(recs)
	if err == nil {
		s.appends <- recs
	}
	return wait, err
}

// waitState waits for the append of id in state. The coordinator appends
// a completion only once the transaction's markers are durable.
func (s *notifyingStore) waitState(t *testing.T, id string, state txn.State) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case recs := <-s.appends:
			for _, r := range recs {
				if r.TxnID == id && r.Meta != nil && r.Meta.State == state {
					return
				}
			}
		case <-timeout:
			t.Fatalf("%s never persisted in %s", id, state)
		}
	}
}
