package broker

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/vfs"
)

// txnFixture is one single-partition topic on the in-memory filesystem.
type txnFixture struct {
	t   *testing.T
	fs  *vfs.MemFS
	b   *Broker
	p   *Partition
	seq map[int64]int32
}

func newTxnFixture(t *testing.T, configs map[string]string) *txnFixture {
	t.Helper()
	f := &txnFixture{t: t, fs: vfs.NewMem(), seq: map[int64]int32{}}
	f.b = openMem(t, f.fs)
	t.Cleanup(func() { f.b.Close() })
	if _, err := f.b.CreateTopic("tx", 1, configs, false); err != nil {
		t.Fatal(err)
	}
	f.p, _ = f.b.Partition("tx", 0)
	return f
}

func (f *txnFixture) reopen(fs *vfs.MemFS, durability commitlog.Durability) {
	f.t.Helper()
	b, err := Open(Options{FS: fs, Dir: "/data", Logger: quiet(), Durability: durability})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { b.Close() })
	f.fs, f.b = fs, b
	f.p, err = b.Partition("tx", 0)
	if err != nil {
		f.t.Fatal(err)
	}
}

// produce appends n records, transactional for pid >= 0 when txn, and
// waits until they are durable; it returns the first offset.
func (f *txnFixture) produce(pid int64, txn bool, n int) int64 {
	f.t.Helper()
	o := batch.BuildOptions{BaseSequence: -1}
	if pid >= 0 {
		o = batch.BuildOptions{HasProducer: true, ProducerID: pid, BaseSequence: f.seq[pid], Transactional: txn}
		f.seq[pid] += int32(n)
	}
	a, err := f.p.Produce(mkBatch(f.t, n, o))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.p.WaitDurable(context.Background(), a.LastOffset+1); err != nil {
		f.t.Fatal(err)
	}
	return a.BaseOffset
}

// end writes a marker for pid through WriteTxnMarkers and returns its
// offset.
func (f *txnFixture) end(pid int64, commit bool) int64 {
	f.t.Helper()
	res := f.b.WriteTxnMarkers(context.Background(), []TxnMarker{{ProducerID: pid, Commit: commit,
		Partitions: []TopicPartition{{Topic: "tx", Partition: 0}}}})
	if len(res) != 1 || res[0].Err != nil {
		f.t.Fatalf("WriteTxnMarkers = %+v", res)
	}
	return res[0].Offset
}

func (f *txnFixture) wantLSO(want int64) {
	f.t.Helper()
	if got := f.p.LastStableOffset(); got != want {
		f.t.Fatalf("LastStableOffset = %d, want %d (high watermark %d)", got, want, f.p.HighWatermark())
	}
}

func (f *txnFixture) wantAborted(from, to int64, want ...AbortedTxn) {
	f.t.Helper()
	if got := f.p.AbortedTransactions(from, to); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
		f.t.Fatalf("AbortedTransactions(%d, %d) = %+v, want %+v", from, to, got, want)
	}
}

func TestTxnLastStableOffset(t *testing.T) {
	f := newTxnFixture(t, nil)
	f.produce(-1, false, 2) // 0-1
	f.wantLSO(2)
	first := f.produce(7, true, 3) // 2-4
	f.wantLSO(first)
	f.produce(-1, false, 2) // 5-6: past an open transaction, still held
	f.produce(7, true, 1)   // 7: same transaction
	f.wantLSO(first)
	if f.p.HighWatermark() != 8 {
		t.Fatalf("high watermark %d", f.p.HighWatermark())
	}
	if m := f.end(7, true); m != 8 {
		t.Fatalf("commit marker at %d", m)
	}
	f.wantLSO(9)
	f.wantAborted(0, 100)

	// Two transactions interleaved: the older one holds the LSO.
	a := f.produce(8, true, 2) // 9-10
	b := f.produce(9, true, 2) // 11-12
	f.wantLSO(a)
	abortAt := f.end(8, false) // 13
	f.wantLSO(b)
	f.wantAborted(0, 100, AbortedTxn{ProducerID: 8, FirstOffset: a, LastOffset: abortAt})
	f.end(9, true) // 14
	f.wantLSO(15)
	f.wantAborted(abortAt, 100, AbortedTxn{ProducerID: 8, FirstOffset: a, LastOffset: abortAt})
	f.wantAborted(0, a)
	f.wantAborted(abortAt+1, 100)

	// A marker without data aborts only itself, as in Kafka.
	lone := f.end(10, false)
	f.wantAborted(lone, lone+1, AbortedTxn{ProducerID: 10, FirstOffset: lone, LastOffset: lone})

	// read_committed reads: nothing at or past the LSO.
	c := f.produce(8, true, 1)
	rd, err := f.p.ReadCommittedBuf(0, 1<<20, nil)
	if err != nil || rd.LastStableOffset != c {
		t.Fatalf("ReadCommittedBuf = %+v, %v", rd, err)
	}
	if last := lastOffset(t, rd.Data); last != c-1 {
		t.Fatalf("read_committed read up to %d, LSO %d", last, c)
	}
	if len(rd.Aborted) != 2 {
		t.Fatalf("aborted %+v", rd.Aborted)
	}
	if rd, err := f.p.ReadCommittedBuf(c, 1<<20, nil); err != nil || len(rd.Data) != 0 {
		t.Fatalf("read at the LSO = %d bytes, %v", len(rd.Data), err)
	}
	if _, err := f.p.ReadCommittedBuf(c+5, 1<<20, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past the high watermark: %v", err)
	}
	if off, _, _ := f.p.ListOffsetAt(LatestTimestamp, ReadCommitted); off != c {
		t.Fatalf("ListOffsetAt(latest, read_committed) = %d, want %d", off, c)
	}
	if off, _, _ := f.p.ListOffsetAt(LatestTimestamp, ReadUncommitted); off != c+1 {
		t.Fatalf("ListOffsetAt(latest, read_uncommitted) = %d, want %d", off, c+1)
	}
}

func lastOffset(t *testing.T, data []byte) int64 {
	t.Helper()
	last := int64(-1)
	for len(data) > 0 {
		one, rest, err := batch.Split(data)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := batch.ParseHeader(one)
		last, data = h.LastOffset(), rest
	}
	return last
}

func TestTxnFencing(t *testing.T) {
	f := newTxnFixture(t, nil)
	f.produce(5, true, 1)
	// An idempotent batch of the producer while its transaction is open.
	if _, err := f.p.Produce(mkBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: 5, BaseSequence: 1})); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("non-transactional batch in a transaction: %v", err)
	}
	if _, err := f.b.WriteMarker(Marker{Topic: "tx", ProducerID: 5, ProducerEpoch: 1, Commit: false, CoordinatorEpoch: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.WriteMarker(Marker{Topic: "tx", ProducerID: 5, ProducerEpoch: 0, CoordinatorEpoch: 3}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("older producer epoch: %v", err)
	}
	if _, err := f.b.WriteMarker(Marker{Topic: "tx", ProducerID: 5, ProducerEpoch: 1, CoordinatorEpoch: 2}); !errors.Is(err, ErrTransactionCoordinatorFenced) {
		t.Fatalf("older coordinator epoch: %v", err)
	}
	// The abort bumped the epoch: the old one is fenced, the new one
	// starts at sequence 0.
	if _, err := f.p.Produce(mkBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: 5, BaseSequence: 1, Transactional: true})); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced epoch: %v", err)
	}
	if _, err := f.p.Produce(mkBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: 5, ProducerEpoch: 1, Transactional: true})); err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.WriteMarker(Marker{Topic: "nope", ProducerID: 5}); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}
	if _, err := f.b.WriteMarker(Marker{Topic: "tx", ProducerID: -1}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("no producer: %v", err)
	}
}

func TestGateRefusesClientMarkers(t *testing.T) {
	f := newTxnFixture(t, nil)
	marker, err := batch.Build(batch.BuildOptions{HasProducer: true, ProducerID: 1, BaseSequence: -1, Transactional: true, Control: true},
		[]batch.Record{batch.EndTxnMarker(batch.ControlCommit, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.Produce(Write{Topic: "tx", Records: marker}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("client marker: %v", err)
	}
	if f.p.HighWatermark() != 0 {
		t.Fatal("the client marker was appended")
	}
	// Markers may reach reserved topics (transactional offset commits).
	if _, err := f.b.OpenInternalLog(OffsetsTopic); err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.WriteMarker(Marker{Topic: OffsetsTopic, ProducerID: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestTxnStateSurvivesReopen(t *testing.T) {
	build := func(t *testing.T) (*txnFixture, AbortedTxn, int64) {
		f := newTxnFixture(t, nil)
		f.produce(-1, false, 1)
		a := f.produce(1, true, 2)
		f.produce(2, true, 1)
		m := f.end(1, false)
		f.end(2, true)
		open := f.produce(3, true, 2)
		f.produce(-1, false, 1)
		return f, AbortedTxn{ProducerID: 1, FirstOffset: a, LastOffset: m}, open
	}
	check := func(f *txnFixture, ab AbortedTxn, open int64) {
		f.t.Helper()
		f.wantLSO(open)
		f.wantAborted(0, 100, ab)
		// The transaction left open ends after the restart.
		f.end(3, false)
		f.wantLSO(f.p.HighWatermark())
		f.wantAborted(open, 100, AbortedTxn{ProducerID: 3, FirstOffset: open, LastOffset: f.p.HighWatermark() - 1})
	}
	t.Run("close", func(t *testing.T) {
		f, ab, open := build(t)
		if err := f.b.Close(); err != nil {
			t.Fatal(err)
		}
		f.reopen(f.fs, commitlog.Always)
		check(f, ab, open)
	})
	t.Run("crash", func(t *testing.T) {
		f, ab, open := build(t)
		f.reopen(f.fs.Crash(rand.New(rand.NewPCG(1, 2))), commitlog.Always)
		check(f, ab, open)
	})
}

// TestTxnMarkerLostInCrash: a marker that never became durable is gone
// after a power loss, and its transaction holds the LSO again until the
// coordinator's recovery writes it anew.
func TestTxnMarkerLostInCrash(t *testing.T) {
	mem := vfs.NewMem()
	b, err := Open(Options{FS: mem, Dir: "/data", Logger: quiet(), Durability: commitlog.Never})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateTopic("tx", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("tx", 0)
	if _, err := p.Produce(mkBatch(t, 2, batch.BuildOptions{HasProducer: true, ProducerID: 4, Transactional: true})); err != nil {
		t.Fatal(err)
	}
	img := mem.CrashStrict() // the open transaction, unsynced: lost too
	if _, err := b.WriteMarker(Marker{Topic: "tx", ProducerID: 4, Commit: true}); err != nil {
		t.Fatal(err)
	}
	if lso := p.LastStableOffset(); lso != 3 {
		t.Fatalf("LSO after the commit = %d", lso)
	}
	f := &txnFixture{t: t, seq: map[int64]int32{}}
	f.reopen(img, commitlog.Never)
	f.wantLSO(0)
	if hw := f.p.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark after the crash %d", hw)
	}

	// Now with the transaction's data durable, the marker not.
	if _, err := f.p.Produce(mkBatch(t, 2, batch.BuildOptions{HasProducer: true, ProducerID: 4, Transactional: true})); err != nil {
		t.Fatal(err)
	}
	if err := f.b.Close(); err != nil { // syncs
		t.Fatal(err)
	}
	f.reopen(f.fs, commitlog.Never)
	img = f.fs.CrashStrict()
	if _, err := f.b.WriteMarker(Marker{Topic: "tx", ProducerID: 4, Commit: true}); err != nil {
		t.Fatal(err)
	}
	f.wantLSO(3)
	f.reopen(img, commitlog.Never)
	f.wantLSO(0)
	f.end(4, true)
	f.wantLSO(3)
}

func TestTxnIndexPruned(t *testing.T) {
	t.Run("delete records", func(t *testing.T) {
		f := newTxnFixture(t, nil)
		a := f.produce(1, true, 2)
		m := f.end(1, false)
		b := f.produce(2, true, 2)
		m2 := f.end(2, false)
		f.produce(-1, false, 1)
		if _, err := f.p.DeleteRecords(m); err != nil {
			t.Fatal(err)
		}
		f.wantAborted(0, 100, AbortedTxn{1, a, m}, AbortedTxn{2, b, m2})
		if _, err := f.p.DeleteRecords(m + 1); err != nil {
			t.Fatal(err)
		}
		f.wantAborted(0, 100, AbortedTxn{2, b, m2})
	})
	t.Run("retention", func(t *testing.T) {
		f := newTxnFixture(t, map[string]string{"segment.bytes": "1048576", "retention.bytes": "1"})
		f.produce(1, true, 2)
		f.end(1, false)
		big := bytes.Repeat([]byte("x"), 400<<10)
		for range 3 {
			a, err := f.p.Produce(mustBuild(t, batch.Record{Value: big}))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.p.WaitDurable(context.Background(), a.LastOffset+1); err != nil {
				t.Fatal(err)
			}
		}
		f.b.EnforceRetention()
		if f.p.LogStartOffset() == 0 {
			t.Fatal("retention removed nothing")
		}
		f.wantAborted(0, 100)
	})
}

func mustBuild(t *testing.T, recs ...batch.Record) []byte {
	t.Helper()
	b, err := batch.Build(batch.BuildOptions{BaseTimestamp: 1}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkLoadTxnState measures the walk that rebuilds producer and
// transaction state at open, over a log of 100,000 batches of which a
// tenth are transactional and every transaction ends with a marker (half
// of them aborts): the cost per reopened partition.
func BenchmarkLoadTxnState(b *testing.B) {
	br, err := Open(Options{FS: vfs.NewMem(), Dir: "/data", Logger: quiet(), Durability: commitlog.Never})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	if _, err := br.CreateTopic("tx", 1, map[string]string{"segment.bytes": "16777216"}, false); err != nil {
		b.Fatal(err)
	}
	p, _ := br.Partition("tx", 0)
	rec := []batch.Record{{Value: []byte("0123456789abcdef0123456789abcdef")}}
	const batches = 100_000
	seq := map[int64]int32{}
	for i := 0; i < batches; i++ {
		o := batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli(), BaseSequence: -1}
		pid := int64(i % 50)
		txn := i%10 == 0
		if txn {
			o = batch.BuildOptions{BaseTimestamp: o.BaseTimestamp, HasProducer: true, ProducerID: pid, BaseSequence: seq[pid], Transactional: true}
			seq[pid]++
		}
		raw, err := batch.Build(o, rec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Produce(raw); err != nil {
			b.Fatal(err)
		}
		if txn {
			if _, err := br.WriteMarker(Marker{Topic: "tx", ProducerID: pid, Commit: i%20 == 0}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for range b.N {
		p.producers = map[int64]*producerState{}
		p.txns = txnIndex{}
		if err := p.loadProducers(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p.txns.aborted)), "aborts")
}
