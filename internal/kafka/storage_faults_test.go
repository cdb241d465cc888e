package kafka

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/vfs"
)

// Disk faults seen through the Kafka protocol: the error codes clients
// get, what the operator sees in the log and in the metrics. The
// broker-level behaviour is in internal/broker/faults_test.go.

// lockedBuffer is a goroutine-safe log destination.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// faultServer is a server whose broker's filesystem fails what inj says
// for the files under the directory of partition 0 of topic "t" only.
type faultServer struct {
	*testServer
	mem     *vfs.MemFS
	b       *broker.Broker
	reg     *metrics.Registry
	brokLog *lockedBuffer
	dir     string // partition t-0's log directory
	inj     atomic.Pointer[vfs.Injector]
	metaInj atomic.Pointer[vfs.Injector] // for topic metadata files
}

func (f *faultServer) arm(inj vfs.Injector) { f.inj.Store(&inj) }

// armMeta fails what inj says for the files under /data/topics.
func (f *faultServer) armMeta(inj vfs.Injector) { f.metaInj.Store(&inj) }

func startFaultServer(t *testing.T, segmentBytes int64) *faultServer {
	t.Helper()
	f := &faultServer{mem: vfs.NewMem(), brokLog: &lockedBuffer{}, reg: metrics.NewBare()}
	fsys := vfs.NewErrorFS(f.mem, vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if inj := f.metaInj.Load(); inj != nil && strings.HasPrefix(path, "/data/topics/") {
			return (*inj).MaybeError(op, path)
		}
		inj := f.inj.Load()
		if inj == nil || f.dir == "" || !strings.HasPrefix(path, f.dir+"/") {
			return nil
		}
		return (*inj).MaybeError(op, path)
	}))
	b, err := broker.Open(broker.Options{FS: fsys, Dir: "/data", SegmentBytes: segmentBytes,
		Logger: slog.New(slog.NewTextHandler(f.brokLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenGroupStore(b)
	if err != nil {
		t.Fatal(err)
	}
	g, err := group.NewService(group.ServiceOptions{Store: store, Config: group.Config{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); _ = b.Close() })
	for _, name := range []string{"t", "other"} {
		if _, err := b.CreateTopic(name, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	tp, _ := b.Topic("t")
	f.dir = filepath.Join("/data/logs", hex.EncodeToString(tp.ID[:]), "0")
	f.b = b
	f.testServer = startServer(t, Options{Broker: b, Groups: g, Metrics: f.reg})
	return f
}

// errorCount is the weir_kafka_request_errors_total sample for api and
// Kafka error name.
func (f *faultServer) errorCount(t *testing.T, api, name string) float64 {
	t.Helper()
	mfs, err := f.reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "weir_kafka_request_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["api"] == api && labels["error"] == name {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func produceCode(t *testing.T, c *rawClient, acks int16, topic string, records []byte) (int16, int64) {
	t.Helper()
	resp := c.roundTrip(produceReq(9, acks, topic, 0, records)).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

// TestFsyncEIOOverKafka: after an fsync fails, acks=all and acks=1
// produces to that partition get KAFKA_STORAGE_ERROR with no offset, the
// high watermark and fetches show only what was acknowledged, other
// partitions keep serving, and the failure is in the log and the metrics.
func TestFsyncEIOOverKafka(t *testing.T) {
	f := startFaultServer(t, 0)
	c := dial(t, f.addr)
	if code, off := produceCode(t, c, -1, "t", buildBatch(t, 2, batch.BuildOptions{})); code != 0 || off != 0 {
		t.Fatalf("first produce: %v at %d", kerr.ErrorForCode(code), off)
	}
	f.arm(vfs.FailOnce(vfs.OpSync, syscall.EIO))
	for i, acks := range []int16{-1, -1, 1} {
		code, off := produceCode(t, c, acks, "t", buildBatch(t, 3, batch.BuildOptions{}))
		if code != kerr.KafkaStorageError.Code || off != -1 {
			t.Fatalf("produce %d (acks=%d) after the failed fsync: %v at offset %d, want KAFKA_STORAGE_ERROR and -1",
				i, acks, kerr.ErrorForCode(code), off)
		}
	}
	resp := c.roundTrip(fetchReq(11, "t", 0, 0, 0, 0)).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 2 {
		t.Fatalf("fetch: %v, high watermark %d; want the 2 acknowledged records", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark)
	}
	if n := countRecords(t, p.RecordBatches); n != 2 {
		t.Fatalf("fetch served %d records, want 2", n)
	}
	if code, _ := produceCode(t, c, -1, "other", buildBatch(t, 1, batch.BuildOptions{})); code != 0 {
		t.Fatalf("produce to another topic: %v", kerr.ErrorForCode(code))
	}
	if logs := f.brokLog.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "input/output error") {
		t.Errorf("the fsync failure is not in the broker log:\n%s", logs)
	}
	waitFor(t, "the metrics to count the errors", func() bool {
		return f.errorCount(t, "Produce", kerr.KafkaStorageError.Message) >= 3
	})
}

// countRecords counts the records in fetched batches, checking every CRC.
func countRecords(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for len(data) > 0 {
		one, rest, err := batch.Split(data)
		if err != nil {
			t.Fatalf("fetched bytes do not frame: %v", err)
		}
		h, err := batch.Verify(one)
		if err != nil {
			t.Fatalf("fetched a damaged batch: %v", err)
		}
		n += int(h.NumRecords)
		data = rest
	}
	return n
}

// TestENOSPCOverKafka: a full disk answers produces with
// KAFKA_STORAGE_ERROR (retriable), consumes no offsets, and a franz-go
// producer that keeps retrying succeeds once space is freed, with every
// record exactly once, in order.
func TestENOSPCOverKafka(t *testing.T) {
	f := startFaultServer(t, 0)
	full := vfs.NewToggle(vfs.OpWrite, vfs.OpCreate)
	f.arm(vfs.WithPartialWrite(full, func(n int) int { return n / 3 }))
	full.Set(syscall.ENOSPC)
	c := dial(t, f.addr)
	if code, off := produceCode(t, c, -1, "t", buildBatch(t, 2, batch.BuildOptions{})); code != kerr.KafkaStorageError.Code || off != -1 {
		t.Fatalf("produce on a full disk: %v at %d, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code), off)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(f.addr), kgo.DefaultProduceTopic("t"),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
		kgo.MetadataMinAge(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		time.Sleep(300 * time.Millisecond)
		full.Clear() // space freed
	}()
	var results []kgo.ProduceResult
	for i := 0; i < 20; i++ {
		r := kgo.StringRecord(fmt.Sprint(i))
		results = append(results, cl.ProduceSync(ctx, r)...)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
		if r.Record.Offset != int64(i) {
			t.Fatalf("record %d at offset %d: offsets were consumed by failed appends", i, r.Record.Offset)
		}
	}
	resp := c.roundTrip(fetchReq(11, "t", 0, 0, 0, 0)).(*kmsg.FetchResponse)
	if n := countRecords(t, resp.Topics[0].Partitions[0].RecordBatches); n != 20 {
		t.Fatalf("the log holds %d records, want 20", n)
	}
	waitFor(t, "the metrics to count the Produce errors", func() bool {
		return f.errorCount(t, "Produce", kerr.KafkaStorageError.Message) >= 1
	})
}

// TestCorruptSegmentOverKafka: a flipped byte in a sealed segment is never
// fetched: a fetch from before it returns the intact batches only, a fetch
// of the damaged batch gets KAFKA_STORAGE_ERROR and no data.
func TestCorruptSegmentOverKafka(t *testing.T) {
	f := startFaultServer(t, 1024)
	c := dial(t, f.addr)
	var sizes []int
	for i := 0; i < 20; i++ {
		raw := buildBatch(t, 2, batch.BuildOptions{})
		sizes = append(sizes, len(raw))
		if code, _ := produceCode(t, c, -1, "t", raw); code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
	}
	seg := filepath.Join(f.dir, fmt.Sprintf("%020d.log", 0))
	pos := sizes[0] + sizes[1] + sizes[2] - 3 // a record byte of the third batch: offsets 4-5
	orig, err := f.mem.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) <= pos || len(orig) >= 1024 {
		t.Fatalf("segment of %d bytes: not sealed as expected", len(orig))
	}
	if err := f.mem.Corrupt(seg, int64(pos), []byte{orig[pos] ^ 1}); err != nil {
		t.Fatal(err)
	}
	p := c.roundTrip(fetchReq(11, "t", 0, 0, 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || countRecords(t, p.RecordBatches) != 4 {
		t.Fatalf("fetch from 0: %v, %d bytes; want the 4 intact records", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
	for _, off := range []int64{4, 5} {
		p := c.roundTrip(fetchReq(11, "t", 0, off, 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.ErrorCode != kerr.KafkaStorageError.Code || len(p.RecordBatches) != 0 {
			t.Fatalf("fetch at damaged offset %d: %v with %d bytes, want KAFKA_STORAGE_ERROR and nothing",
				off, kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
		}
	}
	waitFor(t, "the metrics to count the Fetch errors", func() bool {
		return f.errorCount(t, "Fetch", kerr.KafkaStorageError.Message) >= 2
	})
}

// TestStorageErrorsHidePaths: a storage failure reaches Kafka clients as
// KAFKA_STORAGE_ERROR with a message that names the partition, if any,
// and none of the server's paths; the operator finds the whole error,
// paths included, in the broker's log.
func TestStorageErrorsHidePaths(t *testing.T) {
	f := startFaultServer(t, 0)
	c := dial(t, f.addr)
	full := vfs.NewToggle(vfs.OpWrite)
	full.Set(syscall.ENOSPC)
	f.arm(full)
	p := c.roundTrip(produceReq(9, -1, "t", 0, buildBatch(t, 2, batch.BuildOptions{}))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	want := "storage error on this broker in partition t-0; the broker's log has the details"
	if p.ErrorCode != kerr.KafkaStorageError.Code || p.ErrorMessage == nil || *p.ErrorMessage != want {
		t.Fatalf("produce on a full disk: %v, message %v; want KAFKA_STORAGE_ERROR and %q",
			kerr.ErrorForCode(p.ErrorCode), deref(p.ErrorMessage), want)
	}
	if logs := f.brokLog.String(); !strings.Contains(logs, f.dir) || !strings.Contains(logs, "no space left on device") {
		t.Errorf("the produce's storage error is not in the broker log:\n%s", logs)
	}

	f.armMeta(vfs.FailOnce(vfs.OpCreate, syscall.EIO))
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	req.Topics = []kmsg.CreateTopicsRequestTopic{createTopicReq("new", 1, 1)}
	rt := c.roundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0]
	want = "storage error on this broker; the broker's log has the details"
	if rt.ErrorCode != kerr.KafkaStorageError.Code || rt.ErrorMessage == nil || *rt.ErrorMessage != want {
		t.Fatalf("create topic with a failing disk: %v, message %v; want KAFKA_STORAGE_ERROR and %q",
			kerr.ErrorForCode(rt.ErrorCode), deref(rt.ErrorMessage), want)
	}
	if logs := f.brokLog.String(); !strings.Contains(logs, "/data/topics/") {
		t.Errorf("the create's storage error is not in the broker log:\n%s", logs)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", *s)
}
