package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tiered storage against the real binary (issue 16, "Done when"): a topic
// with remote.storage.enable=true on a node started with --archive
// file://DIR gets far more written than local.retention.bytes keeps; once
// the sealed segments are archived and deleted locally, franz-go, kcat and
// kafkajs each read every record from offset 0 (served from the archive
// below the local log start) and check count, content and order, and
// `weir archive restore` copies the topic into a new one that holds the
// same records byte for byte.

// archiveScale is the size of an archive read-through run.
type archiveScale struct {
	total   int64 // bytes of record values produced, over all partitions
	segment int64 // segment.bytes
	local   int64 // local.retention.bytes (per partition)
}

// archiveScaleFor is 32 MiB through 256 KiB segments with 512 KiB kept
// locally in `make test`; WEIRTEST_ARCHIVE_MB (make soak: 1024) writes that
// many MiB with 64 MiB kept locally, the full size.
func archiveScaleFor(t *testing.T) archiveScale {
	s := archiveScale{total: 32 << 20, segment: 256 << 10, local: 512 << 10}
	if v := os.Getenv("WEIRTEST_ARCHIVE_MB"); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil || mb < 1 {
			t.Fatalf("WEIRTEST_ARCHIVE_MB=%q: want a positive integer", v)
		}
		s = archiveScale{total: int64(mb) << 20, segment: 8 << 20, local: 64 << 20}
	}
	return s
}

const (
	archParts = 2
	archTS0   = 1_700_000_000_000 // first record's timestamp (Unix ms)
)

// archPool is the text record values are cut from.
var archPool = func() []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	r := rand.New(rand.NewPCG(16, 16))
	b := make([]byte, 8192)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}()

// archRec is record i of an archive run: partition i%archParts at offset
// i/archParts, a value of 500-1499 printable bytes (kcat prints it as is),
// two headers and an explicit timestamp.
type archRec struct {
	partition int32
	offset    int64
	key       []byte
	value     []byte
	headers   []kgo.RecordHeader
	ts        int64
}

func archRecord(i int64) archRec {
	n := 500 + (i*7919)%1000
	at := (i * 131) % (int64(len(archPool)) - n)
	v := make([]byte, 0, n+10)
	v = fmt.Appendf(v, "%09d:", i)
	v = append(v, archPool[at:at+n-10]...)
	return archRec{
		partition: int32(i % archParts),
		offset:    i / archParts,
		key:       fmt.Appendf(nil, "k-%09d", i),
		value:     v,
		headers: []kgo.RecordHeader{{Key: "i", Value: strconv.AppendInt(nil, i, 10)},
			{Key: "src", Value: []byte("archive-e2e")}},
		ts: archTS0 + i,
	}
}

// archIndex is the record index at a partition's offset.
func archIndex(p int32, off int64) int64 { return off*archParts + int64(p) }

// archDigest is the SHA-256 test/kafkajs/archive_read.js computes over a
// partition's records in order.
func archDigest(h hash.Hash, r archRec) {
	var hs []string
	for _, x := range r.headers {
		hs = append(hs, x.Key+"="+string(x.Value))
	}
	fmt.Fprintf(h, "%d|%d|%s|%s|%s\n", r.offset, r.ts, r.key, strings.Join(hs, ","), r.value)
}

// archCreateTopic creates a tiered topic.
func archCreateTopic(t *testing.T, w *Weir, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	cl := extKgoClient(t, w)
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx(t), partitions, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// archProduce writes records [0, n) with an idempotent acks=all producer
// and checks each was acknowledged at its offset.
func archProduce(t *testing.T, w *Weir, topic string, n int64) {
	t.Helper()
	cl := extKgoClient(t, w, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(64<<10), kgo.MaxBufferedRecords(4096),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // kafkajs decodes gzip only
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	errs := make(chan error, 1)
	for i := range n {
		r := archRecord(i)
		cl.Produce(c, &kgo.Record{Partition: r.partition, Key: r.key, Value: r.value, Headers: r.headers,
			Timestamp: time.UnixMilli(r.ts)}, func(got *kgo.Record, err error) {
			if err == nil && got.Offset != r.offset {
				err = fmt.Errorf("record %d acknowledged at %d-%d, want offset %d", i, got.Partition, got.Offset, r.offset)
			}
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(c); err != nil {
		t.Fatalf("flush: %v", err)
	}
	select {
	case err := <-errs:
		t.Fatalf("produce: %v", err)
	default:
	}
}

// archListOffsets asks ListOffsets v9 for one special timestamp (-2
// earliest, -4 earliest-local, -5 latest-tiered) of every partition.
func archListOffsets(t *testing.T, cl *kgo.Client, topic string, partitions int32, ts int64) []int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 9
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx(t), cl)
	if err != nil {
		t.Fatalf("ListOffsets %d: %v", ts, err)
	}
	out := make([]int64, partitions)
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("ListOffsets %d of %s-%d: error %d", ts, topic, p.Partition, p.ErrorCode)
		}
		out[p.Partition] = p.Offset
	}
	return out
}

// archMetric returns one unlabelled metric's value from /metrics.
func archMetric(t *testing.T, w *Weir, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + w.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// archWaitTiered waits until every partition's sealed segments are archived
// and local retention has deleted the archived ones it may: the local log
// starts above 0 (ListOffsets -4), the archive starts at 0 (-2) and reaches
// the local log start (-5), and nothing waits for upload.
func archWaitTiered(t *testing.T, w *Weir, topic string, partitions int32, timeout time.Duration) (localStart []int64) {
	t.Helper()
	cl := extKgoClient(t, w)
	deadline := time.Now().Add(timeout)
	for {
		earliest := archListOffsets(t, cl, topic, partitions, -2)
		local := archListOffsets(t, cl, topic, partitions, -4)
		tiered := archListOffsets(t, cl, topic, partitions, -5)
		ok := archMetric(t, w, "weir_archive_lag_segments") == 0
		for p := range partitions {
			ok = ok && earliest[p] == 0 && local[p] > 0 && tiered[p]+1 >= local[p]
		}
		if ok {
			return local
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not archived after %v: earliest %v, earliest-local %v, latest-tiered %v\nweir log tail:\n%s",
				topic, timeout, earliest, local, tiered, extLogTail(w, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// archCheckRecord compares a record read back with record archIndex(p, off).
func archCheckRecord(p int32, off int64, key, value []byte, headers []kgo.RecordHeader, ts int64) error {
	want := archRecord(archIndex(p, off))
	switch {
	case !bytes.Equal(key, want.key):
		return fmt.Errorf("%d-%d: key %q, want %q", p, off, key, want.key)
	case !bytes.Equal(value, want.value):
		return fmt.Errorf("%d-%d: value differs (%d bytes, want %d)", p, off, len(value), len(want.value))
	case ts != want.ts:
		return fmt.Errorf("%d-%d: timestamp %d, want %d", p, off, ts, want.ts)
	case len(headers) != len(want.headers):
		return fmt.Errorf("%d-%d: %d headers, want %d", p, off, len(headers), len(want.headers))
	}
	for i, h := range headers {
		if h.Key != want.headers[i].Key || !bytes.Equal(h.Value, want.headers[i].Value) {
			return fmt.Errorf("%d-%d: header %d %s=%q, want %s=%q", p, off, i, h.Key, h.Value, want.headers[i].Key, want.headers[i].Value)
		}
	}
	return nil
}

// archReadFranz reads every partition of topic from offset 0 to counts[p]
// with franz-go and checks every record (offset order, content), returning
// per-partition digests.
func archReadFranz(t *testing.T, w *Weir, topic string, counts []int64) []string {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for p := range counts {
		offsets[int32(p)] = kgo.NewOffset().At(0)
	}
	cl := extKgoClient(t, w, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(200*time.Millisecond))
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	next := make([]int64, len(counts))
	hs := make([]hash.Hash, len(counts))
	for p := range hs {
		hs[p] = sha256.New()
	}
	remaining := int64(0)
	for _, n := range counts {
		remaining += n
	}
	for remaining > 0 {
		fs := cl.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("franz-go read %s: %d records missing at %v", topic, remaining, next)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("franz-go fetch %s-%d at %d: %v", tp, p, next[p], err) })
		fs.EachRecord(func(r *kgo.Record) {
			p := r.Partition
			if r.Offset != next[p] {
				t.Fatalf("franz-go %s-%d: offset %d after %d (gap, repeat or reorder)", topic, p, r.Offset, next[p]-1)
			}
			if err := archCheckRecord(p, r.Offset, r.Key, r.Value, r.Headers, r.Timestamp.UnixMilli()); err != nil {
				t.Fatalf("franz-go %s: %v", topic, err)
			}
			if r.Attrs.TimestampType() != 0 {
				t.Fatalf("franz-go %s-%d-%d: timestamp type %d, want CreateTime", topic, p, r.Offset, r.Attrs.TimestampType())
			}
			archDigest(hs[p], archRecord(archIndex(p, r.Offset)))
			next[p]++
			remaining--
		})
	}
	out := make([]string, len(hs))
	for p, h := range hs {
		out[p] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

// archReadKcat consumes topic with `kcat -C -e -o beginning` and checks
// every record it prints (partition, offset order, timestamp, key,
// headers, value) and the count per partition.
func archReadKcat(t *testing.T, w *Weir, topic string, counts []int64, timeout time.Duration) {
	t.Helper()
	bin := kcatBin(t)
	c, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"-b", w.Addr, "-C", "-e", "-o", "beginning", "-t", topic, "-q",
		"-X", "check.crcs=true", "-f", "%p|%o|%T|%k|%h|%s\n"}
	cmd := exec.CommandContext(c, bin, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fail := func(format string, a ...any) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("kcat %s: %s\nstderr:\n%s\nweir log tail:\n%s", strings.Join(args, " "), fmt.Sprintf(format, a...), errb.String(), extLogTail(w, 40))
	}
	next := make([]int64, len(counts))
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "|", 6)
		if len(f) != 6 {
			fail("unparsable line %q", sc.Text())
		}
		p, err1 := strconv.Atoi(f[0])
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		ts, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || p < 0 || p >= len(counts) {
			fail("unparsable line %q", sc.Text())
		}
		if off != next[p] {
			fail("partition %d: offset %d after %d (gap, repeat or reorder)", p, off, next[p]-1)
		}
		var hs []kgo.RecordHeader
		for _, kv := range strings.Split(f[4], ",") {
			k, v, _ := strings.Cut(kv, "=")
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		if err := archCheckRecord(int32(p), off, []byte(f[3]), []byte(f[5]), hs, ts); err != nil {
			fail("%v", err)
		}
		next[p]++
	}
	if err := cmd.Wait(); err != nil || c.Err() != nil {
		t.Fatalf("kcat: %v (%v) after %v records\nstderr:\n%s\nweir log tail:\n%s", err, c.Err(), next, errb.String(), extLogTail(w, 40))
	}
	if librdkafkaWarning.Match(errb.Bytes()) || bytes.Contains(errb.Bytes(), []byte("% ERROR")) {
		t.Fatalf("kcat logged an error:\n%s", errb.String())
	}
	for p, n := range counts {
		if next[p] != n {
			t.Fatalf("kcat read %d records of partition %d, want %d\nstderr:\n%s", next[p], p, n, errb.String())
		}
	}
}

// archReadKafkajs reads topic from the beginning with a kafkajs consumer
// group (test/kafkajs/archive_read.js) and compares its per-partition
// counts, order checks and digests with want.
func archReadKafkajs(t *testing.T, w *Weir, topic string, counts []int64, want []string, timeout time.Duration) {
	t.Helper()
	dir, node := kafkajsDir(t)
	cm := map[string]int64{}
	for p, n := range counts {
		cm[strconv.Itoa(p)] = n
	}
	cj, _ := json.Marshal(cm)
	env := []string{"KAFKAJS_NO_PARTITIONER_WARNING=1", fmt.Sprintf("ARCHIVE_READ_TIMEOUT_MS=%d", (timeout - 5*time.Second).Milliseconds())}
	start := time.Now()
	out, errb, err := extRunTool(timeout, nil, dir, env, node, "archive_read.js", w.Addr, topic, "archive-read-kafkajs", string(cj))
	if err != nil {
		t.Fatalf("node archive_read.js: %v after %v\nstdout:\n%s\nstderr:\n%s\nweir log tail:\n%s", err,
			time.Since(start).Round(time.Millisecond), out, errb, extLogTail(w, 40))
	}
	var res struct {
		Partitions map[string]struct {
			Count  int64    `json:"count"`
			SHA256 string   `json:"sha256"`
			Errors []string `json:"errors"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
		t.Fatalf("archive_read.js output: %v\nstdout:\n%s\nstderr:\n%s", err, out, errb)
	}
	for p, n := range counts {
		got := res.Partitions[strconv.Itoa(p)]
		if got.Count != n || len(got.Errors) > 0 || got.SHA256 != want[p] {
			t.Errorf("kafkajs partition %d: %d records (want %d), order errors %v, digest %s (want %s)",
				p, got.Count, n, got.Errors, got.SHA256, want[p])
		}
	}
}

// archExpectedDigests is the digest of records [0, n) per partition.
func archExpectedDigests(n int64) []string {
	hs := make([]hash.Hash, archParts)
	for p := range hs {
		hs[p] = sha256.New()
	}
	for i := range n {
		r := archRecord(i)
		archDigest(hs[r.partition], r)
	}
	out := make([]string, archParts)
	for p, h := range hs {
		out[p] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

// weirCLI runs a weir subcommand of the built binary against w.
func weirCLI(t *testing.T, w *Weir, timeout time.Duration, args ...string) string {
	t.Helper()
	env := []string{"WEIR_BROKERS=" + w.Addr, "WEIR_HTTP=" + w.HTTP}
	out, errb, err := extRunTool(timeout, nil, "", env, binary(t), args...)
	if err != nil {
		t.Fatalf("weir %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errb)
	}
	return string(out)
}

// TestArchiveReadThrough is the read-through test on the binary
// with a file:// archive (scaled down; WEIRTEST_ARCHIVE_MB=1024 for the
// full gigabyte).
func TestArchiveReadThrough(t *testing.T) {
	archiveReadThrough(t, "file://"+filepath.Join(t.TempDir(), "archive"), nil)
}

func archiveReadThrough(t *testing.T, archiveURL string, env []string) {
	sc := archiveScaleFor(t)
	avg := int64(1000 + 10 + 60) // value + key + headers, roughly
	n := sc.total / avg
	n -= n % archParts
	const topic, restored = "tiered-e2e", "tiered-e2e-restored"
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	w := StartWeir(t, "", "--archive", archiveURL)
	archCreateTopic(t, w, topic, archParts, map[string]string{
		"remote.storage.enable": "true", "segment.bytes": fmt.Sprint(sc.segment),
		"local.retention.bytes": fmt.Sprint(sc.local), "retention.ms": "-1",
	})
	start := time.Now()
	archProduce(t, w, topic, n)
	t.Logf("produced %d records (%d MiB) in %v", n, sc.total>>20, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	local := archWaitTiered(t, w, topic, archParts, 2*time.Minute)
	t.Logf("archived in %v more; local log starts at %v", time.Since(start).Round(time.Millisecond), local)
	counts := make([]int64, archParts)
	for p := range counts {
		counts[p] = n / archParts
		if local[p] < counts[p]/2 {
			t.Errorf("partition %d: local log starts at %d of %d records: local retention kept too much", p, local[p], counts[p])
		}
	}
	want := archExpectedDigests(n)
	readTimeout := 2*time.Minute + time.Duration(sc.total>>20)*time.Second

	step := func(what string, f func()) {
		start := time.Now()
		f()
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	step("franz-go read from offset 0", func() {
		if got := archReadFranz(t, w, topic, counts); !equalStrings(got, want) {
			t.Fatalf("franz-go digests %v, want %v", got, want)
		}
	})
	step("kcat read from the beginning", func() { archReadKcat(t, w, topic, counts, readTimeout) })
	step("kafkajs read from the beginning", func() { archReadKafkajs(t, w, topic, counts, want, readTimeout) })
	step("weir archive verify", func() {
		out := weirCLI(t, w, readTimeout, "archive", "verify", topic)
		t.Logf("%s", strings.TrimSpace(out))
	})
	step("weir topic describe shows the local and archived ranges", func() {
		var desc []struct {
			Partitions []struct {
				LogStart    int64  `json:"log_start_offset"`
				LocalStart  *int64 `json:"local_start_offset"`
				ArchivedEnd *int64 `json:"archived_end_offset"`
			} `json:"partitions"`
		}
		out := weirCLI(t, w, readTimeout, "topic", "describe", topic, "--format", "json")
		if err := json.Unmarshal([]byte(out), &desc); err != nil || len(desc) != 1 || len(desc[0].Partitions) == 0 {
			t.Fatalf("weir topic describe --format json: %v\n%s", err, out)
		}
		for i, p := range desc[0].Partitions {
			if p.LogStart != 0 || p.LocalStart == nil || *p.LocalStart <= 0 || p.ArchivedEnd == nil || *p.ArchivedEnd < *p.LocalStart {
				t.Fatalf("partition %d: log start %d, local start %v, archived end %v\n%s", i, p.LogStart, p.LocalStart, p.ArchivedEnd, out)
			}
		}
		if text := weirCLI(t, w, readTimeout, "topic", "describe", topic); !strings.Contains(text, "LOCAL-START") || !strings.Contains(text, "ARCHIVED") {
			t.Fatalf("weir topic describe shows no tiered columns:\n%s", text)
		}
	})
	step("weir archive restore and compare", func() {
		out := weirCLI(t, w, readTimeout, "archive", "restore", topic, "--to", restored)
		if !strings.Contains(out, fmt.Sprintf("Restored %d records", n)) {
			t.Fatalf("weir archive restore: %s", out)
		}
		archCompareTopics(t, w, topic, restored, counts)
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// archCompareTopics reads both topics in lockstep, partition by partition,
// and requires the same records at the same offsets: key, value, headers,
// timestamp and timestamp type byte for byte.
func archCompareTopics(t *testing.T, w *Weir, src, dst string, counts []int64) {
	t.Helper()
	if hw := highWatermarks(t, w.Addr, dst); len(hw) != len(counts) {
		t.Fatalf("%s has %d partitions, want %d", dst, len(hw), len(counts))
	} else {
		for p, n := range counts {
			if hw[int32(p)] != n {
				t.Fatalf("%s-%d ends at %d, want %d", dst, p, hw[int32(p)], n)
			}
		}
	}
	for p, n := range counts {
		a := archPartitionReader(t, w, src, int32(p))
		b := archPartitionReader(t, w, dst, int32(p))
		for off := int64(0); off < n; off++ {
			x, y := a.next(), b.next()
			if x.Offset != off || y.Offset != off {
				t.Fatalf("partition %d: offsets %d and %d, want %d", p, x.Offset, y.Offset, off)
			}
			if !bytes.Equal(x.Key, y.Key) || !bytes.Equal(x.Value, y.Value) || !x.Timestamp.Equal(y.Timestamp) ||
				x.Attrs.TimestampType() != y.Attrs.TimestampType() || !equalHeaders(x.Headers, y.Headers) {
				t.Fatalf("partition %d offset %d: restored record differs:\n src key %q ts %v headers %v\n dst key %q ts %v headers %v",
					p, off, x.Key, x.Timestamp, x.Headers, y.Key, y.Timestamp, y.Headers)
			}
		}
	}
}

func equalHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// partitionReader yields one partition's records in order.
type partitionReader struct {
	t     *testing.T
	topic string
	p     int32
	last  int64
	cl    *kgo.Client
	c     context.Context
	stop  context.CancelFunc
	buf   []*kgo.Record
}

func archPartitionReader(t *testing.T, w *Weir, topic string, p int32) *partitionReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxPartitionBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	r := &partitionReader{t: t, topic: topic, p: p, last: -1, cl: cl, c: c, stop: cancel}
	t.Cleanup(r.close)
	return r
}

func (r *partitionReader) next() *kgo.Record {
	r.t.Helper()
	for len(r.buf) == 0 {
		fs := r.cl.PollFetches(r.c)
		if err := r.c.Err(); err != nil {
			r.t.Fatalf("read %s-%d after offset %d: %v", r.topic, r.p, r.last, err)
		}
		fs.EachError(func(tp string, p int32, err error) { r.t.Fatalf("fetch %s-%d: %v", tp, p, err) })
		r.buf = fs.Records()
	}
	rec := r.buf[0]
	r.buf = r.buf[1:]
	r.last = rec.Offset
	return rec
}

func (r *partitionReader) close() {
	r.stop()
	r.cl.Close()
}
