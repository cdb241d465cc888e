package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/vfs"
)

// fakeSchemas accepts data starting with "ok" and records its calls.
type fakeSchemas struct {
	calls []string
}

func (f *fakeSchemas) CheckRecord(subject string, data []byte, full bool) error {
	f.calls = append(f.calls, fmt.Sprintf("%s:%s:%v", subject, data, full))
	if strings.HasPrefix(string(data), "ok") {
		return nil
	}
	return errors.New("not ok")
}

func buildRecords(t *testing.T, codec batch.Codec, recs ...batch.Record) []byte {
	t.Helper()
	for i := range recs {
		recs[i].OffsetDelta = int32(i)
	}
	raw, err := batch.Build(batch.BuildOptions{Codec: codec}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestGateSchemaValidation: the gate applies the installed validator to
// keys and values by the topic's weir.* or confluent.* modes, reports every
// refused record with its index, and writes nothing of a refused write.
func TestGateSchemaValidation(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	fake := &fakeSchemas{}
	b.SetRecordValidator(fake)
	for name, cfg := range map[string]map[string]string{
		"off":   nil,
		"value": {"weir.value.schema.validation": "TRUE"},
		"full":  {"weir.value.schema.validation": "full"},
		"both":  {"confluent.key.schema.validation": "true", "confluent.value.schema.validation": "true"},
		"wins":  {"weir.value.schema.validation": "false", "confluent.value.schema.validation": "true"},
	} {
		if _, err := b.CreateTopic(name, 1, cfg, false); err != nil {
			t.Fatal(err)
		}
	}
	good := func() []byte {
		return buildRecords(t, batch.CodecNone, batch.Record{Key: []byte("ok-k"), Value: []byte("ok-1")}, batch.Record{Key: []byte("k")})
	}
	bad := func() []byte {
		return buildRecords(t, batch.CodecLZ4, batch.Record{Value: []byte("ok")}, batch.Record{Value: []byte("no")}, batch.Record{Value: []byte("nope")})
	}
	for _, c := range []struct {
		topic   string
		records []byte
		calls   []string
		wantErr string
	}{
		{"off", bad(), nil, ""},
		{"value", good(), []string{"value-value:ok-1:false"}, ""},
		{"full", good(), []string{"full-value:ok-1:true"}, ""},
		{"both", good(), []string{"both-key:ok-k:false", "both-value:ok-1:false", "both-key:k:false"}, "both-0 record 1: key not ok"},
		{"wins", bad(), nil, ""},
		{"value", bad(), []string{"value-value:ok:false", "value-value:no:false", "value-value:nope:false"}, "value-0 record 1: value not ok (and 1 more records)"},
		{"value", append(good(), bad()...), nil, "value-0 record 3: value not ok (and 1 more records)"},
	} {
		fake.calls = nil
		p, _ := b.Partition(c.topic, 0)
		before := p.log.EndOffset() // the high watermark trails it until the fsync
		_, err := b.Produce(Write{Topic: c.topic, Records: c.records})
		if c.calls != nil && strings.Join(fake.calls, " ") != strings.Join(c.calls, " ") {
			t.Errorf("%s: calls %q, want %q", c.topic, fake.calls, c.calls)
		}
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected %v", c.topic, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrInvalidRecord)):
			t.Errorf("%s: got %v, want INVALID_RECORD containing %q", c.topic, err, c.wantErr)
		}
		if c.wantErr != "" && p.log.EndOffset() != before {
			t.Errorf("%s: a refused write moved the log end %d -> %d", c.topic, before, p.log.EndOffset())
		}
	}
	// Garbage is refused by the record checks before any validator runs.
	fake.calls = nil
	if _, err := b.Produce(Write{Topic: "value", Records: []byte("garbage")}); !errors.Is(err, ErrCorruptMessage) || len(fake.calls) != 0 {
		t.Errorf("garbage: %v after %d validator calls, want CORRUPT_MESSAGE and none", err, len(fake.calls))
	}
	// Without a validator, a validated topic refuses rather than lets
	// unchecked records in.
	b.SetRecordValidator(nil)
	if _, err := b.Produce(Write{Topic: "value", Records: good()}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("no validator installed: %v, want INVALID_RECORD", err)
	}
}

func TestRecordErrorsAreCapped(t *testing.T) {
	re := &RecordErrors{Topic: "t"}
	for i := range maxRecordErrors + 50 {
		re.add(int32(i), "bad")
	}
	if got := len(re.Records); got != maxRecordErrors {
		t.Fatalf("%d error records, want %d", got, maxRecordErrors)
	}
	if !strings.Contains(re.Error(), "and 149 more records") {
		t.Fatal(re.Error())
	}
}

// TestGateReservedTopics: clients can neither create nor write nor
// administer an internal topic; its InternalLog alone writes it, and an
// InternalLog may not write another topic.
func TestGateReservedTopics(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	l, err := b.OpenInternalLog(SchemasTopic)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := b.OpenInternalLog(SchemasTopic); err != nil || again != l {
		t.Fatalf("second open: %v, %v; want the same log", again, err)
	}
	if _, err := b.OpenInternalLog("orders"); err == nil {
		t.Fatal("an internal log for a non-reserved name")
	}
	rec := func() []byte {
		return buildRecords(t, batch.CodecNone, batch.Record{Key: []byte("k"), Value: []byte("v")})
	}
	for _, name := range []string{SchemasTopic, OffsetsTopic, TransactionStateTopic, SubscriptionsTopic, "__weir_future"} {
		if _, err := b.Produce(Write{Topic: name, Records: rec()}); !errors.Is(err, ErrReservedTopic) || !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("produce to %s: %v, want a reserved-topic INVALID_TOPIC", name, err)
		}
		if _, err := b.CreateTopic(name, 1, nil, false); !errors.Is(err, ErrReservedTopic) || !errors.Is(err, ErrPolicyViolation) {
			t.Errorf("create %s: %v, want a reserved-topic POLICY_VIOLATION", name, err)
		}
		if _, err := b.TopicForWrite(name); !errors.Is(err, ErrReservedTopic) {
			t.Errorf("topic for write %s: %v", name, err)
		}
	}
	if err := b.DeleteTopic(SchemasTopic); !errors.Is(err, ErrReservedTopic) {
		t.Errorf("delete: %v", err)
	}
	if err := b.CreatePartitions(SchemasTopic, 3, false); !errors.Is(err, ErrReservedTopic) {
		t.Errorf("create partitions: %v", err)
	}
	if err := b.AlterConfigs(SchemasTopic, map[string]string{"retention.ms": "1000"}, false); !errors.Is(err, ErrReservedTopic) {
		t.Errorf("alter configs: %v", err)
	}
	if err := b.IncrementalAlterConfigs(SchemasTopic, []ConfigOp{{Name: "cleanup.policy", Op: OpSet, Value: "delete"}}, false); !errors.Is(err, ErrReservedTopic) {
		t.Errorf("incremental alter configs: %v", err)
	}
	p, _ := b.Partition(SchemasTopic, 0)
	if _, err := p.DeleteRecords(-1); !errors.Is(err, ErrReservedTopic) {
		t.Errorf("delete records: %v", err)
	}

	// The owner writes, durably, and replays what it wrote.
	if err := l.AppendWait(context.Background(), []batch.Record{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := l.Replay(func(off int64, r batch.Record) error {
		got = append(got, fmt.Sprintf("%d:%s=%s", off, r.Key, r.Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "0:a=1 1:b=" {
		t.Fatalf("replayed %q", got)
	}
	// An internal log writes only its own topic.
	if _, err := b.CreateTopic("orders", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.gate(Write{Topic: "orders", Records: rec()}, origin{log: l}); !errors.Is(err, ErrReservedTopic) {
		t.Errorf("internal log writing a client topic: %v", err)
	}
}

// TestInternalLogRepairsConfigs: an internal topic left with wrong configs
// (created before Weir reserved its name, say by an HTTP write with the
// default 7-day retention) is repaired when its log opens; one with more
// than one partition fails the open, saying why.
func TestInternalLogRepairsConfigs(t *testing.T) {
	fs := vfs.NewMem()
	b := openMem(t, fs)
	bad := map[string]string{"cleanup.policy": "delete", "retention.ms": "604800000"}
	if _, err := b.createTopic(SchemasTopic, 1, bad, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.createTopic(SubscriptionsTopic, 3, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openMem(t, fs)
	defer b.Close()
	if _, err := b.OpenInternalLog(SchemasTopic); err != nil {
		t.Fatal(err)
	}
	tp, _ := b.Topic(SchemasTopic)
	if got, want := tp.Configs(), b.internalConfigs(); !maps.Equal(got, want) {
		t.Fatalf("configs after repair %v, want %v", got, want)
	}
	_, err := b.OpenInternalLog(SubscriptionsTopic)
	if err == nil || !strings.Contains(err.Error(), "has 3 partitions") {
		t.Fatalf("three-partition internal topic: %v", err)
	}
}

// TestGateCountsTraffic: records and bytes in are counted at the gate for
// every writer, duplicates of idempotent retries once; reads count out;
// a deleted topic's series go.
func TestGateCountsTraffic(t *testing.T) {
	reg := metrics.NewBare()
	fs := vfs.NewMem()
	b, err := Open(Options{FS: fs, Dir: "/data", Logger: quiet(), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	one := mkBatch(t, 3, batch.BuildOptions{HasProducer: true, ProducerID: 7, BaseSequence: 0})
	n := len(one)
	retry := append([]byte(nil), one...)
	for _, recs := range [][]byte{one, retry} {
		if _, err := b.Produce(Write{Topic: "t", Records: recs}); err != nil {
			t.Fatal(err)
		}
	}
	tr := b.traffic
	if v := testutil.ToFloat64(tr.recsIn.WithLabelValues("t")); v != 3 {
		t.Errorf("records in %v, want 3 (the retry is a duplicate)", v)
	}
	if v := testutil.ToFloat64(tr.bytesIn.WithLabelValues("t")); v != float64(n) {
		t.Errorf("bytes in %v, want %d", v, n)
	}
	p, _ := b.Partition("t", 0)
	if err := p.WaitDurable(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(tr.recsOut.WithLabelValues("t")); v != 3 {
		t.Errorf("records out %v, want 3", v)
	}
	if err := b.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if c := testutil.CollectAndCount(tr.recsIn); c != 0 {
		t.Errorf("%d records-in series after the topic was deleted", c)
	}
}

// TestGatePolicy: the installed topic policy applies to explicit and
// automatic creation alike.
func TestGatePolicy(t *testing.T) {
	fs := vfs.NewMem()
	b, err := Open(Options{FS: fs, Dir: "/data", Logger: quiet(), AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetTopicPolicy(func(name string, _ map[string]string) error {
		if !strings.HasPrefix(name, "team.") {
			return fmt.Errorf("%w: %q lacks the team. prefix", ErrPolicyViolation, name)
		}
		return nil
	})
	if _, err := b.CreateTopic("orders", 1, nil, false); !errors.Is(err, ErrPolicyViolation) {
		t.Errorf("create: %v", err)
	}
	if _, err := b.EnsureTopic("orders"); !errors.Is(err, ErrPolicyViolation) {
		t.Errorf("auto-create: %v", err)
	}
	if _, err := b.TopicForWrite("orders"); !errors.Is(err, ErrPolicyViolation) {
		t.Errorf("topic for write: %v", err)
	}
	if _, err := b.TopicForWrite("team.orders"); err != nil {
		t.Errorf("allowed name: %v", err)
	}
}

// TestCheckWriteAppendsNothing: a dry run of the gate answers what Produce
// would, and writes nothing either way.
func TestCheckWriteAppendsNothing(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	b.SetRecordValidator(&fakeSchemas{})
	if _, err := b.CreateTopic("v", 1, map[string]string{"weir.value.schema.validation": "true"}, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("v", 0)
	ok := buildRecords(t, batch.CodecNone, batch.Record{Value: []byte("ok")})
	bad := buildRecords(t, batch.CodecNone, batch.Record{Value: []byte("no")})
	if err := b.CheckWrite(Write{Topic: "v", Records: ok}); err != nil {
		t.Fatalf("check of a good write: %v", err)
	}
	if err := b.CheckWrite(Write{Topic: "v", Records: bad}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("check of a bad write: %v", err)
	}
	if err := b.CheckWrite(Write{Topic: SchemasTopic, Records: ok}); !errors.Is(err, ErrReservedTopic) {
		t.Fatalf("check of a reserved topic: %v", err)
	}
	if end := p.log.EndOffset(); end != 0 {
		t.Fatalf("checks appended: log end %d", end)
	}
	if _, err := b.Produce(Write{Topic: "v", Records: ok}); err != nil {
		t.Fatalf("produce after the check: %v", err)
	}
}
