package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kcat (1.7.1 on Debian, librdkafka 2.0.2) against the real binary:
// metadata, producing with every codec and acks level, consuming, offset
// lookups by timestamp, and cross-client round trips with franz-go.

// extInCI reports whether the tests run in CI, where missing client tools are
// a failure rather than a reason to skip.
func extInCI() bool { return os.Getenv("CI") != "" }

// extRequireTool fails (in CI) or skips (locally) when a client is missing.
func extRequireTool(t *testing.T, what, hint string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available (%s)", what, hint)
	if extInCI() {
		t.Fatal(msg + "; CI is set, so this is a failure")
	}
	t.Skip(msg + "; set CI=true to make this a failure")
}

// kcatBin returns the kcat executable on PATH.
func kcatBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		extRequireTool(t, "kcat", "apt-get install kcat, or run scripts/setup-test-deps")
	}
	return p
}

// extLogTail returns the last n lines of the broker's log.
func extLogTail(w *Weir, n int) string {
	lines := strings.Split(strings.TrimRight(w.Logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// extRunTool runs one client process with stdin and a hard timeout and returns
// its stdout and stderr. It never waits on the process beyond the timeout.
// env entries are added to the test's environment.
func extRunTool(timeout time.Duration, stdin []byte, dir string, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(c, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if c.Err() != nil {
		err = fmt.Errorf("timed out after %v (%v)", timeout, err)
	}
	return out.Bytes(), errb.Bytes(), err
}

// librdkafkaWarning matches librdkafka log lines of syslog level 0-4
// (emergency .. warning), e.g. "%4|1700000000.123|FAIL|rdkafka#producer-1| ...":
// protocol errors, unexpected disconnects, unknown correlation ids.
var librdkafkaWarning = regexp.MustCompile(`(?m)^%[0-4]\|`)

// runKcat runs kcat against w with stdin and returns stdout; any failure (exit
// status, timeout, delivery errors) fails the test with kcat's stderr and the
// broker's log tail.
func runKcat(t *testing.T, w *Weir, stdin []byte, args ...string) []byte {
	t.Helper()
	bin := kcatBin(t)
	full := []string{"-b", w.Addr, "-m", "10"}
	if len(args) > 0 && args[0] == "-C" {
		// Verify the CRC-32C of every batch the broker serves.
		full = append(full, "-X", "check.crcs=true")
	}
	full = append(full, args...)
	out, errb, err := extRunTool(25*time.Second, stdin, "", nil, bin, full...)
	if err == nil && bytes.Contains(errb, []byte("Delivery failed")) {
		err = fmt.Errorf("delivery failed")
	}
	if err == nil && bytes.Contains(errb, []byte("% ERROR")) {
		err = fmt.Errorf("kcat reported an error")
	}
	if err == nil && librdkafkaWarning.Match(errb) {
		err = fmt.Errorf("librdkafka logged a warning or error")
	}
	if err != nil {
		t.Fatalf("kcat %s: %v\nstdout:\n%s\nstderr:\n%s\nweir log tail:\n%s",
			strings.Join(full, " "), err, out, errb, extLogTail(w, 60))
	}
	return out
}

// extKgoClient returns a franz-go client for w that is closed with the test.
func extKgoClient(t *testing.T, w *Weir, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(w.Addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// extWaitEndOffset polls until the high watermark of topic/partition reaches
// want (acks=0 producers return before the broker has appended).
func extWaitEndOffset(t *testing.T, w *Weir, topic string, partition int32, want int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var last int64 = -1
	for c.Err() == nil {
		offs, err := adm.ListEndOffsets(c, topic)
		if err == nil {
			if o, ok := offs.Lookup(topic, partition); ok && o.Err == nil {
				last = o.Offset
				if last >= want {
					if last > want {
						t.Fatalf("%s[%d]: end offset %d, want %d", topic, partition, last, want)
					}
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s[%d]: end offset still %d after 15s, want %d\nweir log tail:\n%s", topic, partition, last, want, extLogTail(w, 60))
}

// extKgoRead reads n records of topic/partition from offset 0 with franz-go
// (no consumer group).
func extKgoRead(t *testing.T, w *Weir, topic string, partition int32, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("%s[%d]: read %d of %d records before timeout", topic, partition, len(recs), n)
		}
		fs.EachError(func(tp string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", tp, p, err)
		})
		recs = append(recs, fs.Records()...)
	}
	if len(recs) != n {
		t.Fatalf("%s[%d]: read %d records, want %d", topic, partition, len(recs), n)
	}
	return recs
}

func extHeaderCSV(hs []kgo.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Key + "=" + string(h.Value)
	}
	return strings.Join(parts, ",")
}

// TestKcatMetadata: `kcat -L` lists the broker, the topics and every
// partition with leader, replicas and ISR on broker 0.
func TestKcatMetadata(t *testing.T) {
	kcatBin(t)
	w := StartWeir(t, "", "--default-partitions", "3")
	cl := extKgoClient(t, w, kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, topic := range []string{"kcat-meta-a", "kcat-meta-b"} {
		for p := int32(0); p < 3; p++ {
			if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: topic, Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	type md struct {
		ControllerID int `json:"controllerid"`
		Brokers      []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Error      string `json:"error"`
			Partitions []struct {
				Partition int32  `json:"partition"`
				Leader    int32  `json:"leader"`
				Error     string `json:"error"`
				Replicas  []struct {
					ID int32 `json:"id"`
				} `json:"replicas"`
				ISRs []struct {
					ID int32 `json:"id"`
				} `json:"isrs"`
			} `json:"partitions"`
		} `json:"topics"`
	}

	// All topics, JSON.
	var all md
	out := runKcat(t, w, nil, "-L", "-J")
	if err := json.Unmarshal(out, &all); err != nil {
		t.Fatalf("kcat -L -J: %v\n%s", err, out)
	}
	if len(all.Brokers) != 1 || all.Brokers[0].ID != 0 || all.Brokers[0].Name != w.Addr {
		t.Fatalf("brokers = %+v, want one broker 0 at %s", all.Brokers, w.Addr)
	}
	if all.ControllerID != 0 {
		t.Errorf("controllerid = %d, want 0", all.ControllerID)
	}
	seen := map[string]bool{}
	for _, tp := range all.Topics {
		if !strings.HasPrefix(tp.Topic, "kcat-meta-") {
			continue // internal topics such as __consumer_offsets
		}
		seen[tp.Topic] = true
		if tp.Error != "" {
			t.Errorf("topic %s: error %q", tp.Topic, tp.Error)
		}
		if len(tp.Partitions) != 3 {
			t.Errorf("topic %s: %d partitions, want 3", tp.Topic, len(tp.Partitions))
		}
		for i, p := range tp.Partitions {
			if p.Partition != int32(i) || p.Leader != 0 || p.Error != "" ||
				len(p.Replicas) != 1 || p.Replicas[0].ID != 0 || len(p.ISRs) != 1 || p.ISRs[0].ID != 0 {
				t.Errorf("topic %s partition %d: %+v", tp.Topic, i, p)
			}
		}
	}
	if !seen["kcat-meta-a"] || !seen["kcat-meta-b"] {
		t.Fatalf("kcat -L topics = %v, want kcat-meta-a and kcat-meta-b\n%s", seen, out)
	}

	// One topic, human-readable output.
	txt := string(runKcat(t, w, nil, "-L", "-t", "kcat-meta-b"))
	for _, want := range []string{
		"1 brokers:",
		"broker 0 at " + w.Addr,
		`topic "kcat-meta-b" with 3 partitions:`,
		"partition 0, leader 0, replicas: 0, isrs: 0",
		"partition 1, leader 0, replicas: 0, isrs: 0",
		"partition 2, leader 0, replicas: 0, isrs: 0",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("kcat -L -t kcat-meta-b: missing %q in\n%s", want, txt)
		}
	}
	if strings.Contains(txt, "kcat-meta-a") {
		t.Errorf("kcat -L -t kcat-meta-b lists other topics:\n%s", txt)
	}

	// Metadata v4 allow_auto_topic_creation=false: an unknown topic is
	// reported, not created.
	var unknown md
	out = runKcat(t, w, nil, "-L", "-J", "-t", "kcat-meta-missing", "-X", "allow.auto.create.topics=false")
	if err := json.Unmarshal(out, &unknown); err != nil {
		t.Fatalf("kcat -L -J -t kcat-meta-missing: %v\n%s", err, out)
	}
	if len(unknown.Topics) != 1 || unknown.Topics[0].Error == "" || len(unknown.Topics[0].Partitions) != 0 {
		t.Errorf("unknown topic with auto-create disabled: %s", out)
	}
	if strings.Contains(string(runKcat(t, w, nil, "-L")), "kcat-meta-missing") {
		t.Errorf("kcat-meta-missing was created although the request disallowed auto-creation")
	}
	// A producer handle (kcat -L) allows auto-creation by default.
	txt = string(runKcat(t, w, nil, "-L", "-t", "kcat-meta-auto"))
	if !strings.Contains(txt, `topic "kcat-meta-auto" with 3 partitions:`) {
		t.Errorf("kcat -L -t kcat-meta-auto did not auto-create the topic:\n%s", txt)
	}
}

// TestKcatProtocolFeatures: from Weir's ApiVersions response librdkafka
// 2.0.2 enables record batches (MsgVer2), LZ4, ZSTD, idempotence and offset
// lookups by time. KAFKA-18659: if Produce v0 were not advertised,
// librdkafka <= 2.0 would silently stop compressing.
func TestKcatProtocolFeatures(t *testing.T) {
	kcatBin(t)
	w := StartWeir(t, "")
	bin := kcatBin(t)
	// -d output is debug logging on stderr; run without the strict helper.
	_, errb, err := extRunTool(25*time.Second, nil, "", nil, bin, "-b", w.Addr, "-m", "10", "-L", "-d", "feature")
	if err != nil {
		t.Fatalf("kcat -L -d feature: %v\n%s", err, errb)
	}
	log := string(errb)
	for _, f := range []string{"MsgVer2", "ApiVersion", "LZ4", "ZSTD", "IdempotentProducer", "OffsetTime"} {
		if !strings.Contains(log, "Enabling feature "+f+"\n") {
			t.Errorf("librdkafka did not enable feature %s:\n%s", f, log)
		}
	}
	if !strings.Contains(log, "Feature MsgVer2: Produce (3..3) supported by broker") {
		t.Errorf("librdkafka does not see Produce v3:\n%s", log)
	}
}

// TestKcatPipelinedProduce: librdkafka pipelines one-record Produce
// requests on one connection (no linger, one message per batch); with
// acks=1 every response must come back in order, with acks=0 none may come
// back at all (librdkafka logs unknown correlation ids as errors).
func TestKcatPipelinedProduce(t *testing.T) {
	kcatBin(t)
	w := StartWeir(t, "")
	const n = 500
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "k%d:v%d\n", i, i)
	}
	for _, acks := range []string{"1", "0", "all"} {
		topic := "kcat-pipelined-" + acks
		runKcat(t, w, in.Bytes(), "-P", "-t", topic, "-p", "0", "-K:", "-X", "acks="+acks,
			"-X", "linger.ms=0", "-X", "batch.num.messages=1", "-z", "lz4")
		extWaitEndOffset(t, w, topic, 0, n)
		out := runKcat(t, w, nil, "-C", "-t", topic, "-p", "0", "-e", "-o", "beginning", "-f", `%o:%k:%s\n`)
		var want strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&want, "%d:k%d:v%d\n", i, i, i)
		}
		if string(out) != want.String() {
			t.Errorf("acks=%s: kcat read back\n%.2000s\nwant\n%.2000s", acks, out, want.String())
		}
	}
}

// kcatCodecs maps kcat's -z names to the record batch compression type.
var kcatCodecs = []struct {
	name string
	attr uint8
}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}

// TestKcatProduceCodecsAcks: kcat produces keyed records with headers with
// every codec and every acks level; `kcat -C` reads them back byte-exact
// with offsets and timestamps, and franz-go sees the batches stored with the
// codec kcat was asked for (KAFKA-18659: librdkafka <= 2.0 silently sends
// uncompressed batches unless the broker advertises Produce v0).
func TestKcatProduceCodecsAcks(t *testing.T) {
	kcatBin(t)
	w := StartWeir(t, "")
	const topic = "kcat-codecs"
	const perRun = 6
	type want struct {
		line  string // %k|%s|%h|%o without the timestamp
		from  int64  // timestamp bounds
		to    int64
		codec uint8
	}
	var wants []want
	var next int64
	filler := strings.Repeat("weir-compresses-well ", 12)
	for _, codec := range kcatCodecs {
		for _, acks := range []string{"all", "1", "0"} {
			var in bytes.Buffer
			var lines []string
			for i := 0; i < perRun; i++ {
				key := fmt.Sprintf("k-%s-%s-%d", codec.name, acks, i)
				val := fmt.Sprintf("v:%s:%s:%d héllo wörld ✓ \t%s", codec.name, acks, i, filler)
				switch i {
				case perRun - 2: // tombstone: empty value sent as NULL with -Z
					val = ""
				case perRun - 1: // NULL key
					key = ""
				}
				fmt.Fprintf(&in, "%s:%s\n", key, val)
				if key == "" {
					key = "NULL"
				}
				if val == "" {
					val = "NULL"
				}
				lines = append(lines, key+"|"+val)
			}
			args := []string{"-P", "-t", topic, "-p", "0", "-K:", "-Z",
				"-H", "codec=" + codec.name, "-H", "acks=" + acks, "-H", "empty=", "-H", "uni=ü✓",
				"-X", "acks=" + acks,
				// One batch per run: librdkafka sends a batch uncompressed when
				// compressing does not make it smaller (a lone tombstone would).
				"-X", "linger.ms=200"}
			if codec.name != "none" {
				args = append(args, "-z", codec.name)
			}
			from := time.Now().Add(-time.Second).UnixMilli()
			runKcat(t, w, in.Bytes(), args...)
			to := time.Now().Add(time.Second).UnixMilli()
			next += perRun
			extWaitEndOffset(t, w, topic, 0, next) // acks=0 returns before the append
			hdrs := fmt.Sprintf("codec=%s,acks=%s,empty=,uni=ü✓", codec.name, acks)
			for i, l := range lines {
				wants = append(wants, want{
					line:  fmt.Sprintf("%s|%s|%d", l, hdrs, int(next)-perRun+i),
					from:  from,
					to:    to,
					codec: codec.attr,
				})
			}
		}
	}

	out := runKcat(t, w, nil, "-C", "-t", topic, "-p", "0", "-e", "-Z", "-o", "beginning", "-f", `%k|%s|%h|%o|%T\n`)
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(wants) {
		t.Fatalf("kcat -C read %d records, want %d:\n%s", len(got), len(wants), out)
	}
	for i, g := range got {
		cut := strings.LastIndexByte(g, '|')
		ts, err := strconv.ParseInt(g[cut+1:], 10, 64)
		if err != nil {
			t.Fatalf("record %d: bad timestamp in %q", i, g)
		}
		if g[:cut] != wants[i].line {
			t.Errorf("record %d:\n got %q\nwant %q", i, g[:cut], wants[i].line)
		}
		if ts < wants[i].from || ts > wants[i].to {
			t.Errorf("record %d: timestamp %d outside the produce window [%d, %d]", i, ts, wants[i].from, wants[i].to)
		}
	}

	// Starting inside a compressed batch (gzip with acks=all begins at
	// 3*perRun): the broker returns the whole batch, librdkafka skips ahead.
	mid := 3*perRun + 2
	out = runKcat(t, w, nil, "-C", "-t", topic, "-p", "0", "-e", "-Z", "-o", strconv.Itoa(mid), "-c", "3", "-f", `%k|%s|%h|%o\n`)
	if want := wants[mid].line + "\n" + wants[mid+1].line + "\n" + wants[mid+2].line + "\n"; string(out) != want {
		t.Errorf("kcat -o %d -c 3:\n got %q\nwant %q", mid, out, want)
	}
	// Relative to the end (ListOffsets latest).
	out = runKcat(t, w, nil, "-C", "-t", topic, "-p", "0", "-e", "-Z", "-o", "-2", "-f", `%k|%s|%h|%o\n`)
	if want := wants[len(wants)-2].line + "\n" + wants[len(wants)-1].line + "\n"; string(out) != want {
		t.Errorf("kcat -o -2:\n got %q\nwant %q", out, want)
	}

	// The stored batches carry the codec kcat was asked to use (every batch
	// here shrinks when compressed, so librdkafka must not fall back).
	recs := extKgoRead(t, w, topic, 0, len(wants))
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("kgo record %d has offset %d", i, r.Offset)
		}
		if c := r.Attrs.CompressionType(); c != wants[i].codec {
			t.Errorf("offset %d (%s): stored with compression %d, want %d (librdkafka disabled compression? KAFKA-18659)",
				i, wants[i].line, c, wants[i].codec)
		}
		if r.Attrs.TimestampType() != 0 {
			t.Errorf("offset %d: timestamp type %d, want 0 (CreateTime)", i, r.Attrs.TimestampType())
		}
	}
}

// TestKcatIdempotentProducer: librdkafka's idempotent producer
// (InitProducerId, sequence numbers) with acks=all and zstd.
func TestKcatIdempotentProducer(t *testing.T) {
	kcatBin(t)
	w := StartWeir(t, "")
	const topic = "kcat-idempotent"
	var in bytes.Buffer
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&in, "key-%d:value-%d\n", i, i)
	}
	runKcat(t, w, in.Bytes(), "-P", "-t", topic, "-p", "0", "-K:", "-z", "zstd",
		"-X", "enable.idempotence=true", "-X", "acks=all")
	recs := extKgoRead(t, w, topic, 0, 20)
	for i, r := range recs {
		if string(r.Key) != fmt.Sprintf("key-%d", i) || string(r.Value) != fmt.Sprintf("value-%d", i) || r.Offset != int64(i) {
			t.Errorf("record %d: offset %d key %q value %q", i, r.Offset, r.Key, r.Value)
		}
		if r.ProducerID < 0 {
			t.Errorf("record %d: producer id %d, want an idempotent producer id", i, r.ProducerID)
		}
		if r.Attrs.CompressionType() != 4 {
			t.Errorf("record %d: compression %d, want zstd (4)", i, r.Attrs.CompressionType())
		}
	}
}

// kcatRecord is one record as printed by kcatBinaryFormat.
type kcatRecord struct {
	partition int32
	offset    int64
	key       []byte // nil for NULL
	value     []byte // nil for NULL
	ts        int64
	headers   string
}

// kcatBinaryFormat prints lengths before the raw key and value so binary
// payloads can be parsed back exactly.
const kcatBinaryFormat = `%p %o %K %S %T\n%k%s%h\n`

func parseKcatBinary(t *testing.T, out []byte) []kcatRecord {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(out))
	var recs []kcatRecord
	for {
		head, err := br.ReadString('\n')
		if err == io.EOF && head == "" {
			return recs
		}
		if err != nil {
			t.Fatalf("parse kcat output after %d records: %v", len(recs), err)
		}
		var r kcatRecord
		var klen, vlen int
		if _, err := fmt.Sscanf(head, "%d %d %d %d %d\n", &r.partition, &r.offset, &klen, &vlen, &r.ts); err != nil {
			t.Fatalf("parse kcat record header %q: %v", head, err)
		}
		read := func(n int) []byte {
			if n < 0 {
				return nil
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				t.Fatalf("parse kcat output: %v", err)
			}
			return b
		}
		r.key, r.value = read(klen), read(vlen)
		h, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("parse kcat headers: %v", err)
		}
		r.headers = strings.TrimSuffix(h, "\n")
		recs = append(recs, r)
	}
}

// extBinaryValue returns every byte value, including NUL, '\n' and '|'.
func extBinaryValue(seed int) []byte {
	b := make([]byte, 256+seed)
	for i := range b {
		b[i] = byte(i*7 + seed)
	}
	return b
}

// TestKcatConsumesKgo: franz-go produces binary keys and values, NULL keys
// and values and headers with every codec (one partition per codec, explicit
// timestamps); kcat reads every partition back byte-exact.
func TestKcatConsumesKgo(t *testing.T) {
	kcatBin(t)
	w := StartWeir(t, "", "--default-partitions", "5")
	const topic = "kgo-to-kcat"
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	want := map[int32][]*kgo.Record{}
	for p, codec := range codecs {
		cl := extKgoClient(t, w, kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(50*time.Millisecond))
		var rs []*kgo.Record
		for i := 0; i < 8; i++ {
			r := &kgo.Record{
				Topic:     topic,
				Partition: int32(p),
				Key:       append([]byte{0, '\n', byte(p)}, fmt.Sprintf("key|%d", i)...),
				Value:     extBinaryValue(i),
				Timestamp: base.Add(time.Duration(i) * time.Second),
				Headers: []kgo.RecordHeader{
					{Key: "h1", Value: []byte(fmt.Sprintf("p%d-i%d", p, i))},
					{Key: "h2", Value: []byte("ü✓")},
				},
			}
			switch i {
			case 5:
				r.Key = nil
			case 6:
				r.Value = nil
			case 7:
				r.Key, r.Value, r.Headers = []byte{}, []byte{}, nil
			}
			rs = append(rs, r)
		}
		if err := cl.ProduceSync(ctx(t), rs...).FirstErr(); err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		want[int32(p)] = rs
	}

	got := parseKcatBinary(t, runKcat(t, w, nil, "-C", "-t", topic, "-e", "-o", "beginning", "-f", kcatBinaryFormat))
	byPart := map[int32][]kcatRecord{}
	for _, r := range got {
		byPart[r.partition] = append(byPart[r.partition], r)
	}
	for p, ws := range want {
		gs := byPart[p]
		if len(gs) != len(ws) {
			t.Errorf("partition %d: kcat read %d records, want %d", p, len(gs), len(ws))
			continue
		}
		for i, g := range gs {
			wr := ws[i]
			if g.offset != int64(i) || g.ts != wr.Timestamp.UnixMilli() ||
				!bytes.Equal(g.key, wr.Key) || (g.key == nil) != (wr.Key == nil) ||
				!bytes.Equal(g.value, wr.Value) || (g.value == nil) != (wr.Value == nil) ||
				g.headers != extHeaderCSV(wr.Headers) {
				t.Errorf("partition %d record %d:\n got offset %d ts %d key %q value %q headers %q\nwant offset %d ts %d key %q value %q headers %q",
					p, i, g.offset, g.ts, g.key, g.value, g.headers,
					i, wr.Timestamp.UnixMilli(), wr.Key, wr.Value, extHeaderCSV(wr.Headers))
			}
		}
	}
}

// TestKcatProducesKgoConsumes: kcat produces whole files as binary
// messages (fixed key, headers) and delimiter-separated keyed messages whose
// values hold newlines; franz-go reads them back byte-exact.
func TestKcatProducesKgoConsumes(t *testing.T) {
	kcatBin(t)
	w := StartWeir(t, "")
	const topic = "kcat-to-kgo"
	dir := t.TempDir()
	// Every byte value, but compressible: librdkafka sends a batch that does
	// not shrink uncompressed, and the test checks the stored codec.
	payloads := [][]byte{bytes.Repeat(extBinaryValue(0), 8), bytes.Repeat(extBinaryValue(1), 8), bytes.Repeat([]byte("0123456789abcdef"), 8192)}
	var files []string
	for i, p := range payloads {
		f := filepath.Join(dir, fmt.Sprintf("msg%d.bin", i))
		if err := os.WriteFile(f, p, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	args := append([]string{"-P", "-t", topic, "-p", "0", "-k", "file\x01key", "-H", "src=kcat", "-H", "kind=file", "-z", "snappy", "-X", "linger.ms=200"}, files...)
	runKcat(t, w, nil, args...)

	// Records separated by 0x1e, key and value by 0x1f.
	type kv struct{ key, value string }
	delimited := []kv{
		{"a", "line one\nline two\r\n"},
		{"b|b", "tab\there | pipe, comma = equals"},
		{"c", strings.Repeat("x", 3000)},
	}
	var in bytes.Buffer
	for _, r := range delimited {
		in.WriteString(r.key + "\x1f" + r.value + "\x1e")
	}
	runKcat(t, w, in.Bytes(), "-P", "-t", topic, "-p", "0", "-D", `\x1e`, "-K", `\x1f`, "-H", "src=kcat", "-z", "gzip", "-X", "acks=1", "-X", "linger.ms=200")

	recs := extKgoRead(t, w, topic, 0, len(payloads)+len(delimited))
	for i, r := range recs {
		var wantKey, wantVal []byte
		var wantHdr string
		var wantCodec uint8
		if i < len(payloads) {
			wantKey, wantVal, wantHdr, wantCodec = []byte("file\x01key"), payloads[i], "src=kcat,kind=file", 2
		} else {
			d := delimited[i-len(payloads)]
			wantKey, wantVal, wantHdr, wantCodec = []byte(d.key), []byte(d.value), "src=kcat", 1
		}
		if r.Offset != int64(i) || !bytes.Equal(r.Key, wantKey) || !bytes.Equal(r.Value, wantVal) || extHeaderCSV(r.Headers) != wantHdr {
			t.Errorf("record %d: offset %d key %q headers %q value (%d bytes) equal=%v; want key %q headers %q value %d bytes",
				i, r.Offset, r.Key, extHeaderCSV(r.Headers), len(r.Value), bytes.Equal(r.Value, wantVal), wantKey, wantHdr, len(wantVal))
		}
		if c := r.Attrs.CompressionType(); c != wantCodec {
			t.Errorf("record %d: stored with compression %d, want %d", i, c, wantCodec)
		}
	}
}

// TestKcatQueryAndTimestampRange: `kcat -Q` maps timestamps to offsets
// (ListOffsets) and `kcat -C -o s@ts -o e@ts` consumes a time range.
func TestKcatQueryAndTimestampRange(t *testing.T) {
	kcatBin(t)
	w := StartWeir(t, "", "--default-partitions", "2")
	const topic = "kcat-query"
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	cl := extKgoClient(t, w, kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for i := 0; i < 10; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: 1, Value: []byte(fmt.Sprintf("v%d", i)),
			Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	// Two batches so the lookups cross a batch boundary.
	if err := cl.ProduceSync(ctx(t), rs[:4]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx(t), rs[4:]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ms := func(i int) int64 { return base.Add(time.Duration(i) * time.Minute).UnixMilli() }
	for _, c := range []struct {
		ts   int64
		want int64
	}{
		{ms(0), 0},
		{ms(0) - 1, 0},
		{ms(3), 3},
		{ms(3) + 1, 4},
		{ms(4), 4},
		{ms(9), 9},
		{ms(9) + 1, -1}, // past the last record: no offset
		{-2, 0},         // earliest
		{-1, 10},        // latest
	} {
		out := strings.TrimSpace(string(runKcat(t, w, nil, "-Q", "-t", fmt.Sprintf("%s:1:%d", topic, c.ts))))
		want := fmt.Sprintf("%s [1] offset %d", topic, c.want)
		if out != want {
			t.Errorf("kcat -Q %s:1:%d = %q, want %q", topic, c.ts, out, want)
		}
	}
	// Partition 0 is empty.
	if out := strings.TrimSpace(string(runKcat(t, w, nil, "-Q", "-t", fmt.Sprintf("%s:0:%d", topic, ms(0))))); out != topic+" [0] offset -1" {
		t.Errorf("kcat -Q on the empty partition = %q", out)
	}

	out := runKcat(t, w, nil, "-C", "-t", topic, "-p", "1", "-e", "-o", fmt.Sprintf("s@%d", ms(2)), "-o", fmt.Sprintf("e@%d", ms(6)), "-f", `%o:%s:%T\n`)
	var want strings.Builder
	for i := 2; i < 6; i++ {
		fmt.Fprintf(&want, "%d:v%d:%d\n", i, i, ms(i))
	}
	if string(out) != want.String() {
		t.Errorf("kcat -C -o s@.. -o e@..:\n got %q\nwant %q", out, want.String())
	}
}
