package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/vfs"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openMem(t *testing.T, fs vfs.FS) *Broker {
	t.Helper()
	b, err := Open(Options{FS: fs, Dir: "/data", Logger: quiet(), AutoCreateTopics: true, DefaultPartitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openMemRemote is openMem with tiered storage (an in-memory archive).
func openMemRemote(t *testing.T, fs vfs.FS) *Broker {
	t.Helper()
	b, err := Open(Options{FS: fs, Dir: "/data", Logger: quiet(), AutoCreateTopics: true, DefaultPartitions: 2,
		Remote: newFakeRemote(), RemoteInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mkBatch(t *testing.T, n int, opts batch.BuildOptions) []byte {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	if opts.BaseTimestamp == 0 {
		opts.BaseTimestamp = time.Now().UnixMilli()
	}
	b, err := batch.Build(opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTopicLifecycleSurvivesReopen(t *testing.T) {
	fs := vfs.NewMem()
	b := openMem(t, fs)
	if _, err := b.CreateTopic("orders", 3, map[string]string{"retention.ms": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic("orders", 3, nil, false); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := b.CreateTopic("dry", 1, nil, true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Topic("dry"); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("validate-only created the topic: %v", err)
	}
	tp, _ := b.Topic("orders")
	id := tp.ID
	if err := b.CreatePartitions("orders", 5, false); err != nil {
		t.Fatal(err)
	}
	if err := b.CreatePartitions("orders", 4, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrink: %v", err)
	}
	if _, err := b.CreateTopic("gone", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("orders", 4)
	if _, err := p.Produce(mkBatch(t, 3, batch.BuildOptions{})); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// After a power loss (not a clean close) the same metadata is back.
	b2 := openMem(t, fs.CrashStrict())
	defer b2.Close()
	tp2, err := b2.Topic("orders")
	if err != nil {
		t.Fatal(err)
	}
	if tp2.ID != id || len(tp2.Partitions()) != 5 || tp2.Configs()["retention.ms"] != "1000" {
		t.Fatalf("reopened topic: id %x/%x partitions %d configs %v", tp2.ID, id, len(tp2.Partitions()), tp2.Configs())
	}
	if _, err := b2.Topic("gone"); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("deleted topic resurrected: %v", err)
	}
	p2, _ := b2.Partition("orders", 4)
	if p2.HighWatermark() != 3 {
		t.Fatalf("hwm after reopen = %d, want 3", p2.HighWatermark())
	}
}

func TestTopicNameRules(t *testing.T) {
	for _, n := range []string{"", ".", "..", "has space", "slash/no", string(make([]byte, 250))} {
		if err := ValidateTopicName(n); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ValidateTopicName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"a", "a.b_c-D9", "__consumer_offsets"} {
		if err := ValidateTopicName(n); err != nil {
			t.Errorf("ValidateTopicName(%q) = %v", n, err)
		}
	}
}

func TestConfigs(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	if _, err := b.CreateTopic("t", 1, map[string]string{"no.such": "1"}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("unknown config: %v", err)
	}
	if _, err := b.CreateTopic("t", 1, map[string]string{"retention.ms": "soon"}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad value: %v", err)
	}
	if _, err := b.CreateTopic("t", 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil {
		t.Fatal(err)
	}
	entries, err := b.DescribeConfigs("t")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ConfigEntry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	if e := got["cleanup.policy"]; e.Value != "compact" || e.Source != SourceTopic {
		t.Fatalf("cleanup.policy = %+v", e)
	}
	if e := got["max.message.bytes"]; e.Value != "1048588" || e.Source != SourceDefaultConfig {
		t.Fatalf("max.message.bytes = %+v", e)
	}
	if err := b.IncrementalAlterConfigs("t", []ConfigOp{{Name: "cleanup.policy", Op: OpAppend, Value: "delete"}, {Name: "max.message.bytes", Op: OpSet, Value: "100"}}, false); err != nil {
		t.Fatal(err)
	}
	tp, _ := b.Topic("t")
	if c := tp.Configs(); c["cleanup.policy"] != "compact,delete" || c["max.message.bytes"] != "100" {
		t.Fatalf("after incremental: %v", c)
	}
	p, _ := b.Partition("t", 0)
	if _, err := p.Produce(mkBatch(t, 10, batch.BuildOptions{})); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("append over max.message.bytes: %v", err)
	}
	if err := b.AlterConfigs("t", map[string]string{"retention.bytes": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	if c := tp.Configs(); len(c) != 1 || c["retention.bytes"] != "1000" {
		t.Fatalf("AlterConfigs must replace the set: %v", c)
	}
}

func TestIdempotentProducer(t *testing.T) {
	fs := vfs.NewMem()
	b := openMem(t, fs)
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := b.InitProducerID()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("t", 0)
	prod := func(seq int32, n int) (Appended, error) {
		return p.Produce(mkBatch(t, n, batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}))
	}
	a1, err := prod(0, 3)
	if err != nil || a1.BaseOffset != 0 {
		t.Fatalf("first: %+v %v", a1, err)
	}
	a2, err := prod(3, 2)
	if err != nil || a2.BaseOffset != 3 {
		t.Fatalf("second: %+v %v", a2, err)
	}
	dup, err := prod(0, 3)
	if err != nil || !dup.Duplicate || dup.BaseOffset != 0 || dup.LastOffset != 2 {
		t.Fatalf("retry of first: %+v %v", dup, err)
	}
	if _, err := prod(9, 1); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	if err := p.WaitDurable(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Producer state is rebuilt from the log: a retry after restart is
	// still a duplicate, and the next sequence continues.
	b2 := openMem(t, fs.CrashStrict())
	defer b2.Close()
	p2, _ := b2.Partition("t", 0)
	d2, err := p2.Produce(mkBatch(t, 2, batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 3}))
	if err != nil || !d2.Duplicate || d2.BaseOffset != 3 {
		t.Fatalf("retry after restart: %+v %v", d2, err)
	}
	a3, err := p2.Produce(mkBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 5}))
	if err != nil || a3.BaseOffset != 5 {
		t.Fatalf("next after restart: %+v %v", a3, err)
	}
	if _, err := p2.Produce(mkBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: epoch + 1, BaseSequence: 4})); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at 0: %v", err)
	}
	if _, err := p2.Produce(mkBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: epoch + 1, BaseSequence: 0})); err != nil {
		t.Fatalf("new epoch at 0: %v", err)
	}
	if _, err := p2.Produce(mkBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 6})); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced epoch: %v", err)
	}
	// Producer ids are never handed out twice across restarts.
	pid2, _, err := b2.InitProducerID()
	if err != nil || pid2 <= pid {
		t.Fatalf("pid after restart = %d (first %d), %v", pid2, pid, err)
	}
}

func TestAppendRejectsBadBatches(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("t", 0)
	good := mkBatch(t, 2, batch.BuildOptions{})
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff
	if _, err := p.Produce(bad); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("bad crc: %v", err)
	}
	if _, err := p.Produce(good[:30]); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("truncated: %v", err)
	}
	ctl := mkBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: 1, Control: true, Transactional: true, BaseSequence: -1})
	if _, err := p.Produce(ctl); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("control batch: %v", err)
	}
	if p.log.EndOffset() != 0 {
		t.Fatalf("rejected batches were written: end %d", p.log.EndOffset())
	}
}

func TestListOffsetsAndDeleteRecords(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("t", 0)
	for i, ts := range []int64{1000, 3000, 2000} {
		a, err := p.Produce(mkBatch(t, 1, batch.BuildOptions{BaseTimestamp: ts}))
		if err != nil || a.BaseOffset != int64(i) {
			t.Fatal(a, err)
		}
	}
	if err := p.WaitDurable(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ts, off, rts int64 }{
		{LatestTimestamp, 3, -1}, {EarliestTimestamp, 0, -1}, {MaxTimestamp, 1, 3000},
		{1500, 1, 3000}, {500, 0, 1000}, {9999, -1, -1},
	} {
		off, rts, err := p.ListOffset(tc.ts)
		if err != nil || off != tc.off || rts != tc.rts {
			t.Errorf("ListOffset(%d) = %d, %d, %v; want %d, %d", tc.ts, off, rts, err, tc.off, tc.rts)
		}
	}
	if lw, err := p.DeleteRecords(2); err != nil || lw != 2 {
		t.Fatalf("DeleteRecords = %d, %v", lw, err)
	}
	if off, _, _ := p.ListOffset(EarliestTimestamp); off != 2 {
		t.Fatalf("earliest after delete = %d", off)
	}
	if _, err := p.Read(0, 1<<20); !errors.Is(err, commitlog.ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	if _, err := p.DeleteRecords(10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("delete past hwm: %v", err)
	}
}

func TestAutoCreate(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	tp, err := b.EnsureTopic("auto")
	if err != nil || len(tp.Partitions()) != 2 {
		t.Fatalf("EnsureTopic: %v", err)
	}
	b2, err := Open(Options{FS: vfs.NewMem(), Dir: "/d", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if _, err := b2.EnsureTopic("auto"); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("auto-create off: %v", err)
	}
}
