package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Log compaction seen by real clients. The binary runs with a 200 ms
// cleaner backoff and retention check; one partition of a compacted topic
// (segment.ms 300, min.cleanable.dirty.ratio 0.01, delete.retention.ms
// 100) gets six rounds over 20 keys, each round in its own segment:
//
//	round  producer                 keys                  after cleaning
//	0      franz-go (idempotent)    k00-k19               empty producer batch(es)
//	1      sarama (no producer id)  k00-k19, then k00-09  one empty filler batch
//	2      franz-go                 k10-k14, tombstones   thinned (offset gaps inside)
//	                                k15-k19
//	3      sarama                   k00-k09, k17          kept
//	4      franz-go, one a batch    k10-k12               kept
//	5      franz-go                 tombstone k05         empty producer batch
//	end    franz-go                 sentinel              active segment
//
// Once the cleaner has run, every key's last value (no tombstone: all are
// past delete.retention.ms) is all a reader sees, in offset order at the
// offsets the producers were told, and every client reads to the end:
// franz-go, sarama, kafka-go, kcat (librdkafka) and kafkajs.

const (
	compactTopic = "compacted"
	compactKeys  = 20
)

// compactFlags make the cleaner and the idle-segment roll prompt.
var compactFlags = []string{"--log-cleaner-backoff=200ms", "--log-retention-check-interval=200ms"}

// compactWorkload is what the rounds wrote and what must survive.
type compactWorkload struct {
	produced []rec // every record, offsets as acknowledged
	want     []rec // each key's last record unless a tombstone, in offset order
	end      int64 // the high watermark after the sentinel
}

func createCompacted(t *testing.T, w *Weir, topic string, extra map[string]string) {
	t.Helper()
	cfg := map[string]*string{}
	for k, v := range map[string]string{"cleanup.policy": "compact", "segment.ms": "300",
		"min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"} {
		cfg[k] = &v
	}
	for k, v := range extra {
		cfg[k] = &v
	}
	adm := kadm.NewClient(extKgoClient(t, w))
	res, err := adm.CreateTopic(ctx(t), 1, 1, cfg, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

func keyed(key, value string, tombstone bool) rec {
	r := rec{Key: []byte(key)}
	if !tombstone {
		r.Value = []byte(value)
	}
	return r
}

// produceCompactWorkload writes the rounds of the file comment.
func produceCompactWorkload(t *testing.T, w *Weir) *compactWorkload {
	t.Helper()
	wl := &compactWorkload{}
	idem := extKgoClient(t, w, kgo.DefaultProduceTopic(compactTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(50*time.Millisecond)) // snappy by default
	kgoRound := func(rs []rec, oneByOne bool) {
		t.Helper()
		if oneByOne {
			for i := range rs {
				kr := kgoRecord(compactTopic, rs[i])
				if err := idem.ProduceSync(ctx(t), kr).FirstErr(); err != nil {
					t.Fatalf("franz-go produce: %v", err)
				}
				rs[i].Offset = kr.Offset
			}
		} else {
			krs := make([]*kgo.Record, len(rs))
			for i, r := range rs {
				krs[i] = kgoRecord(compactTopic, r)
			}
			if err := idem.ProduceSync(ctx(t), krs...).FirstErr(); err != nil {
				t.Fatalf("franz-go produce: %v", err)
			}
			for i, kr := range krs {
				rs[i].Offset = kr.Offset
			}
		}
		wl.produced = append(wl.produced, rs...)
	}
	scfg := saramaConfig(sarama.V3_6_0_0)
	scfg.Producer.Idempotent = false
	scfg.Producer.RequiredAcks = sarama.WaitForAll
	scfg.Producer.Flush.Frequency = 50 * time.Millisecond
	saramaRound := func(rs []rec) {
		t.Helper()
		saramaProduceSync(t, w.Addr, scfg, compactTopic, rs)
		wl.produced = append(wl.produced, rs...)
	}
	keys := func(round string, from, to int, tombstone bool) []rec {
		var rs []rec
		for k := from; k <= to; k++ {
			rs = append(rs, keyed(fmt.Sprintf("k%02d", k), fmt.Sprintf("%s-k%02d", round, k), tombstone))
		}
		return rs
	}
	// Each round in its own segment: the retention check rolls an idle
	// segment past segment.ms.
	pause := func() { time.Sleep(450 * time.Millisecond) }

	kgoRound(keys("r0", 0, compactKeys-1, false), false)
	pause()
	saramaRound(keys("r1", 0, compactKeys-1, false))
	saramaRound(keys("r1b", 0, 9, false))
	pause()
	kgoRound(append(keys("r2", 10, 14, false), keys("r2", 15, 19, true)...), false)
	pause()
	saramaRound(append(keys("r3", 0, 9, false), keys("r3", 17, 17, false)...))
	pause()
	kgoRound(keys("r4", 10, 12, false), true)
	pause()
	kgoRound(keys("r5", 5, 5, true), false)
	pause()
	kgoRound([]rec{keyed("sentinel", "end", false)}, false)

	last := map[string]rec{}
	for i, r := range wl.produced {
		if i > 0 && r.Offset <= wl.produced[i-1].Offset {
			t.Fatalf("produced offsets not increasing: %d after %d", r.Offset, wl.produced[i-1].Offset)
		}
		last[string(r.Key)] = r
	}
	for _, r := range last {
		if r.Value != nil {
			wl.want = append(wl.want, r)
		}
	}
	slices.SortFunc(wl.want, func(a, b rec) int { return int(a.Offset - b.Offset) })
	wl.end = wl.produced[len(wl.produced)-1].Offset + 1
	return wl
}

// after is want from offset from on.
func (wl *compactWorkload) after(from int64) []rec {
	i, _ := slices.BinarySearchFunc(wl.want, from, func(r rec, o int64) int { return int(r.Offset - o) })
	return wl.want[i:]
}

// diffRecs describes how got differs from want in offset, key and value
// ("" when it does not).
func diffRecs(want, got []rec) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = fmt.Sprintf("%d %s=%s", want[i].Offset, want[i].Key, nullable(want[i].Value))
		}
		if i < len(got) {
			g = fmt.Sprintf("%d %s=%s", got[i].Offset, got[i].Key, nullable(got[i].Value))
		}
		if w != g {
			fmt.Fprintf(&b, "  #%d want %q got %q\n", i, w, g)
		}
	}
	return b.String()
}

func nullable(v []byte) string {
	if v == nil {
		return "<null>"
	}
	return string(v)
}

// kgoReadTo reads partition 0 of topic from offset from with a direct
// franz-go consumer until the record before end.
func kgoReadTo(t *testing.T, w *Weir, topic string, from, end int64, opts ...kgo.Opt) []rec {
	t.Helper()
	cl := extKgoClient(t, w, append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(from)}}), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	defer cl.Close()
	c, cancel := context.WithTimeout(ctx(t), stepTimeout)
	defer cancel()
	var out []rec
	for len(out) == 0 || out[len(out)-1].Offset < end-1 {
		fs := cl.PollFetches(c)
		if err := fs.Err0(); err != nil {
			t.Fatalf("franz-go read %s from %d: %v after %d records (last %v)", topic, from, err, len(out), out[max(len(out)-1, 0):])
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fromKgo(r)) })
	}
	return out
}

// metricValue scrapes one unlabelled counter from the node's /metrics.
func metricValue(t *testing.T, w *Weir, name string) float64 {
	t.Helper()
	code, body := httpDo(t, http.MethodGet, "http://"+w.HTTP+"/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// waitCompacted polls a franz-go read from the start until it is want
// (the cleaner has removed every superseded record and tombstone).
func waitCompacted(t *testing.T, w *Weir, topic string, want []rec, end int64, opts ...kgo.Opt) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := kgoReadTo(t, w, topic, 0, end, opts...)
		d := diffRecs(want, got)
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not compacted within 30s (records removed %v):\n%s\nweir log tail:\n%s", topic,
				metricValue(t, w, "weir_cleaner_records_removed_total"), d, extLogTail(w, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// batchShapes counts the batch shapes compaction leaves in partition 0
// of a topic's segment files: empty with and without a producer, and
// batches with offsets missing inside. (Fetch leaves the empty ones out,
// so the files are read.)
type batchShapes struct {
	emptyProducer, emptyFiller, gapped, batches int
}

func diskBatchShapes(t *testing.T, w *Weir, topic string) batchShapes {
	t.Helper()
	md, err := kadm.NewClient(extKgoClient(t, w)).Metadata(ctx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	id := md.Topics[topic].ID
	dir := ""
	err = filepath.WalkDir(w.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "0" && filepath.Base(filepath.Dir(path)) == hex.EncodeToString(id[:]) {
			dir = path
		}
		return err
	})
	if err != nil || dir == "" {
		t.Fatalf("no log directory of %s (%x) under %s: %v", topic, id, w.DataDir, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var s batchShapes
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 {
			var b kmsg.RecordBatch
			if err := b.ReadFrom(data); err != nil || b.Length == 0 {
				break // the end of the data (a preallocated tail)
			}
			data = data[12+int(b.Length):]
			s.batches++
			switch {
			case b.NumRecords == 0 && b.ProducerID >= 0:
				s.emptyProducer++
			case b.NumRecords == 0:
				s.emptyFiller++
			case b.NumRecords < b.LastOffsetDelta+1:
				s.gapped++
			}
		}
	}
	return s
}

// kcatRead reads partition 0 of topic from the beginning to its end with
// kcat (-e: it exits only once librdkafka reached the high watermark).
func kcatRead(t *testing.T, w *Weir, topic string, extra ...string) []rec {
	t.Helper()
	args := append([]string{"-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-Z", "-f", "%o %k %s\n"}, extra...)
	var out []rec
	for _, l := range strings.Split(strings.TrimSpace(string(runKcat(t, w, nil, args...))), "\n") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, " ", 3)
		off, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || len(f) != 3 {
			t.Fatalf("kcat line %q", l)
		}
		r := rec{Offset: off, Key: []byte(f[1]), Value: []byte(f[2])}
		if f[2] == "NULL" {
			r.Value = nil
		}
		out = append(out, r)
	}
	return out
}

// kafkajsRead runs test/kafkajs/compacted.js as group until it has
// consumed the record at last, and returns what it consumed.
func kafkajsRead(t *testing.T, w *Weir, topic, group string, last int64) []rec {
	t.Helper()
	dir, node := kafkajsDir(t)
	env := []string{"KAFKAJS_LOG_LEVEL=WARN", "KAFKAJS_NO_PARTITIONER_WARNING=1"}
	out, errb, err := extRunTool(40*time.Second, nil, dir, env, node, filepath.Join(dir, "compacted.js"), w.Addr, topic, group, fmt.Sprint(last))
	var got []rec
	for _, l := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m struct {
			O    string
			K, V *string
		}
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("compacted.js line %q: %v", l, err)
		}
		o, _ := strconv.ParseInt(m.O, 10, 64)
		r := rec{Offset: o}
		for dst, src := range map[*[]byte]*string{&r.Key: m.K, &r.Value: m.V} {
			if src != nil {
				b, _ := base64.StdEncoding.DecodeString(*src)
				*dst = append([]byte{}, b...)
			}
		}
		got = append(got, r)
	}
	if err != nil {
		t.Fatalf("kafkajs group %s did not reach offset %d: %v\nconsumed:\n%s\nstderr tail:\n%s", group, last, err,
			diffRecs(nil, got), tail(string(errb), 30))
	}
	return got
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// groupCommitted returns group's committed offset of topic partition 0.
func groupCommitted(t *testing.T, w *Weir, group, topic string) int64 {
	t.Helper()
	offs, err := kadm.NewClient(extKgoClient(t, w)).FetchOffsets(ctx(t), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return -1
	}
	return o.At
}

// TestCompactionClientsRead: see the file comment. It also commits, for
// groups of their own, offsets that the cleaner removed (inside an empty
// producer batch, inside the filler batch, inside a thinned batch, the
// last removed record before the sentinel) and checks that a franz-go
// and a kafkajs member of each group resume at the next record present
// and read to the end.
func TestCompactionClientsRead(t *testing.T) {
	w := StartWeir(t, "", compactFlags...)
	createCompacted(t, w, compactTopic, nil)
	start := time.Now()
	wl := produceCompactWorkload(t, w)
	t.Logf("produced %d records (end offset %d) in %v; %d survive", len(wl.produced), wl.end,
		time.Since(start).Round(time.Millisecond), len(wl.want))
	waitCompacted(t, w, compactTopic, wl.want, wl.end)
	t.Logf("compacted %v after the last produce", time.Since(start).Round(100*time.Millisecond))
	if n := metricValue(t, w, "weir_cleaner_records_removed_total"); n < float64(len(wl.produced)-len(wl.want)) {
		t.Errorf("weir_cleaner_records_removed_total %v, want at least %d", n, len(wl.produced)-len(wl.want))
	}
	// The log holds the shapes that trip clients up.
	shapes := diskBatchShapes(t, w, compactTopic)
	t.Logf("batches after cleaning: %+v", shapes)
	if shapes.emptyProducer == 0 || shapes.emptyFiller == 0 || shapes.gapped == 0 {
		t.Fatalf("want empty producer batches, empty filler batches and batches with gaps: %+v", shapes)
	}

	check := func(client string, got []rec) {
		t.Helper()
		if d := diffRecs(wl.want, got); d != "" {
			t.Errorf("%s read the compacted topic wrong:\n%s", client, d)
		}
	}
	x := tp{compactTopic, 0}
	counts := map[tp]int{x: len(wl.want)}
	check("franz-go", kgoReadTo(t, w, compactTopic, 0, wl.end))
	check("sarama", saramaConsumer(sarama.V3_6_0_0)(t, w.Addr, counts)[x])
	check("kafka-go", kafkagoConsume(t, w.Addr, counts)[x])
	check("kcat", kcatRead(t, w, compactTopic))
	check("kafkajs", kafkajsRead(t, w, compactTopic, "kjs-all", wl.end-1))
	if o := groupCommitted(t, w, "kjs-all", compactTopic); o != wl.end {
		t.Errorf("kafkajs group committed %d after reading to the end, want %d", o, wl.end)
	}

	// Groups resuming from offsets the cleaner removed.
	present := map[int64]bool{}
	for _, r := range wl.want {
		present[r.Offset] = true
	}
	var removed []int64
	for _, r := range wl.produced {
		if !present[r.Offset] {
			removed = append(removed, r.Offset)
		}
	}
	byRound := func(round string) int64 {
		for _, r := range wl.produced {
			if strings.HasPrefix(string(r.Value), round+"-") || r.Value == nil && round == "tomb" {
				return r.Offset + 1 // inside the batch, past its first record
			}
		}
		t.Fatalf("no record of %s", round)
		return 0
	}
	resume := []int64{byRound("r0"), byRound("r1b"), byRound("tomb"), removed[len(removed)-1]}
	adm := kadm.NewClient(extKgoClient(t, w))
	for _, at := range resume {
		if present[at] {
			t.Fatalf("offset %d is not removed", at)
		}
		for _, client := range []string{"franz-go", "kafkajs"} {
			group := fmt.Sprintf("resume-%s-%d", client, at)
			var offs kadm.Offsets
			offs.Add(kadm.Offset{Topic: compactTopic, Partition: 0, At: at, LeaderEpoch: -1})
			if r, err := adm.CommitOffsets(ctx(t), group, offs); err != nil || r.Error() != nil {
				t.Fatalf("commit %d for %s: %v %v", at, group, err, r.Error())
			}
			var got []rec
			if client == "kafkajs" {
				got = kafkajsRead(t, w, compactTopic, group, wl.end-1)
			} else {
				got = kgoGroupReadTo(t, w, compactTopic, group, wl.end)
			}
			if d := diffRecs(wl.after(at), got); d != "" {
				t.Errorf("%s group resuming at removed offset %d:\n%s", client, at, d)
			}
			if o := groupCommitted(t, w, group, compactTopic); o != wl.end {
				t.Errorf("%s group resumed at %d committed %d at the end, want %d", client, at, o, wl.end)
			}
		}
	}
}

// kgoGroupReadTo consumes topic as a member of group (from its committed
// offset) until the record before end, commits and leaves.
func kgoGroupReadTo(t *testing.T, w *Weir, topic, group string, end int64) []rec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(ctx(t), stepTimeout)
	defer cancel()
	var out []rec
	for len(out) == 0 || out[len(out)-1].Offset < end-1 {
		fs := cl.PollFetches(c)
		if err := fs.Err0(); err != nil {
			t.Fatalf("franz-go group %s: %v after %d records", group, err, len(out))
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fromKgo(r)) })
	}
	if err := cl.CommitUncommittedOffsets(c); err != nil {
		t.Fatalf("franz-go group %s commit: %v", group, err)
	}
	return out
}
