package e2e

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file holds what the client tests share: a client-neutral record, a
// generator of awkward records (null and empty keys and values, binary
// bytes, repeated and empty headers, out-of-order timestamps), one consumer
// per client and the comparison.

// stepTimeout bounds one produce or consume step of a test.
const stepTimeout = 20 * time.Second

// hdr is one record header.
type hdr struct {
	Key   string
	Value []byte
}

// rec is a record as a test wants or a client saw it.
type rec struct {
	Key, Value []byte
	Headers    []hdr
	Time       time.Time // millisecond precision
	Partition  int32
	Offset     int64
}

// baseTime is a CreateTime well away from "now" (two days ago), so a
// broker that substitutes its own clock is caught, and within the default
// retention.ms of 7 days: older records would be deleted by retention,
// the active segment included, within seconds (as Kafka does).
var baseTime = time.UnixMilli(time.Now().Add(-48*time.Hour).UnixMilli()/1000*1000 + 123)

// makeRecs returns n records tagged with tag, spread round-robin over
// parts partitions (Offset -1: the producer reports it).
func makeRecs(tag string, n int, parts int32) []rec {
	rs := make([]rec, n)
	for i := range rs {
		r := &rs[i]
		switch i % 5 {
		case 0: // null key
		case 1:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf([]byte{0x00, 0xff, '\n'}, "%s-k%d", tag, i)
		}
		switch {
		case i == n-1 && n > 2:
			// null value (a tombstone)
		case i%7 == 3:
			r.Value = []byte{}
		default:
			r.Value = fmt.Appendf(nil, "%s-v%d|", tag, i)
			for j := 0; j < i%13*37; j++ {
				r.Value = append(r.Value, byte(j*i), 'a', 'b', 'c')
			}
			r.Value = append(r.Value, 0x00, 0xff, 0x80)
		}
		switch i % 3 {
		case 1:
			r.Headers = []hdr{{Key: "trace", Value: fmt.Appendf(nil, "%s-t%d\x00\xff", tag, i)}}
		case 2:
			r.Headers = []hdr{
				{Key: "dup", Value: []byte("one")},
				{Key: "", Value: []byte{}},
				{Key: "ключ", Value: nil},
				{Key: "dup", Value: []byte{0x01, 0x02}},
			}
		}
		// Mostly increasing, with some steps back inside a batch.
		r.Time = baseTime.Add(time.Duration(i*7-(i%4)*1000) * time.Millisecond)
		if parts > 0 {
			r.Partition = int32(i) % parts
		}
		r.Offset = -1
	}
	return rs
}

// byPartition groups rs by partition, each group sorted by offset.
func byPartition(rs []rec) map[int32][]rec {
	m := map[int32][]rec{}
	for _, r := range rs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	for _, g := range m {
		slices.SortStableFunc(g, func(a, b rec) int { return cmp.Compare(a.Offset, b.Offset) })
	}
	return m
}

// assignOffsets sets the offsets of records produced in slice order to a
// fresh topic (for acks=0, where no producer learns them).
func assignOffsets(rs []rec) {
	next := map[int32]int64{}
	for i := range rs {
		rs[i].Offset = next[rs[i].Partition]
		next[rs[i].Partition]++
	}
}

// checkContiguous fails unless every partition of a fresh topic holds
// offsets 0..n-1 exactly once.
func checkContiguous(t testing.TB, want []rec) {
	t.Helper()
	for p, g := range byPartition(want) {
		for i, r := range g {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: producer reported offsets %v, want 0..%d", p, offsetsOf(g), len(g)-1)
			}
		}
	}
}

func offsetsOf(rs []rec) []int64 {
	o := make([]int64, len(rs))
	for i, r := range rs {
		o[i] = r.Offset
	}
	return o
}

// nullness says whether a comparison also tells null from empty bytes:
// only when both the producer and the consumer keep the difference.
type nullness bool

const (
	nullAware   nullness = true
	nullIgnored nullness = false
)

// compareRecs fails unless got equals want record by record: partition,
// offset, key, value, headers (order kept) and timestamp (ms).
func compareRecs(t testing.TB, what string, want, got []rec, nulls nullness) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", what, len(got), len(want))
	}
	eq := func(a, b []byte) bool {
		if nulls && (a == nil) != (b == nil) {
			return false
		}
		return bytes.Equal(a, b)
	}
	for i := range want {
		w, g := want[i], got[i]
		pre := fmt.Sprintf("%s: record %d (partition %d offset %d)", what, i, w.Partition, w.Offset)
		if g.Partition != w.Partition || g.Offset != w.Offset {
			t.Fatalf("%s: got partition %d offset %d", pre, g.Partition, g.Offset)
		}
		if !eq(g.Key, w.Key) {
			t.Errorf("%s: key %q (nil %v), want %q (nil %v)", pre, g.Key, g.Key == nil, w.Key, w.Key == nil)
		}
		if !eq(g.Value, w.Value) {
			t.Errorf("%s: value %q (nil %v), want %q (nil %v)", pre, head40(g.Value), g.Value == nil, head40(w.Value), w.Value == nil)
		}
		if !slices.EqualFunc(g.Headers, w.Headers, func(a, b hdr) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
			t.Errorf("%s: headers %q, want %q", pre, g.Headers, w.Headers)
		}
		if g.Time.UnixMilli() != w.Time.UnixMilli() {
			t.Errorf("%s: timestamp %d, want %d", pre, g.Time.UnixMilli(), w.Time.UnixMilli())
		}
	}
}

func head40(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// tp names one partition of one topic.
type tp struct {
	topic string
	part  int32
}

func (x tp) String() string { return fmt.Sprintf("%s[%d]", x.topic, x.part) }

// consumeFn reads counts[x] records from the start of each partition x.
type consumeFn func(t testing.TB, addr string, counts map[tp]int) map[tp][]rec

// checkTopics consumes every partition of every topic in wants with one
// call of consume and compares.
func checkTopics(t testing.TB, name string, consume consumeFn, addr string, wants map[string][]rec, nulls nullness) {
	t.Helper()
	parts := map[tp][]rec{}
	counts := map[tp]int{}
	for topic, want := range wants {
		for p, g := range byPartition(want) {
			parts[tp{topic, p}] = g
			counts[tp{topic, p}] = len(g)
		}
	}
	got := consume(t, addr, counts)
	for x, g := range parts {
		compareRecs(t, fmt.Sprintf("%s %s", name, x), g, got[x], nulls)
	}
}

// checkTopic consumes every partition of want with consume and compares.
func checkTopic(t testing.TB, name string, consume consumeFn, addr, topic string, want []rec, nulls nullness) {
	t.Helper()
	checkTopics(t, name, consume, addr, map[string][]rec{topic: want}, nulls)
}

// ---- sarama ----

func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "weir-e2e-sarama"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

func saramaMessage(topic string, r rec) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic, Partition: r.Partition, Timestamp: r.Time}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	if r.Value != nil {
		m.Value = sarama.ByteEncoder(r.Value)
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	return m
}

// saramaProduceSync sends rs with a SyncProducer and records the
// partitions and offsets the broker reported.
func saramaProduceSync(t testing.TB, addr string, cfg *sarama.Config, topic string, rs []rec) {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama NewSyncProducer: %v", err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("sarama producer close: %v", err)
		}
	}()
	msgs := make([]*sarama.ProducerMessage, len(rs))
	for i, r := range rs {
		msgs[i] = saramaMessage(topic, r)
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("sarama SendMessages: %v", err)
	}
	for i, m := range msgs {
		if m.Partition != rs[i].Partition {
			t.Fatalf("record %d went to partition %d, want %d", i, m.Partition, rs[i].Partition)
		}
		rs[i].Offset = m.Offset
	}
}

func fromSarama(m *sarama.ConsumerMessage) rec {
	r := rec{Key: m.Key, Value: m.Value, Time: m.Timestamp, Partition: m.Partition, Offset: m.Offset}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, hdr{Key: string(h.Key), Value: h.Value})
	}
	return r
}

// saramaConsumer returns a consumeFn using one sarama.Consumer with a
// ConsumePartition from OffsetOldest per partition, at version v. (sarama
// gathers new partition consumers for 100 ms before its first Fetch, so
// one consumer for many partitions is much faster than one each.)
func saramaConsumer(v sarama.KafkaVersion) consumeFn {
	return saramaConsumerWith(v, nil)
}

// saramaConsumerWith is saramaConsumer with adjust applied to the config.
func saramaConsumerWith(v sarama.KafkaVersion, adjust func(*sarama.Config)) consumeFn {
	return func(t testing.TB, addr string, counts map[tp]int) map[tp][]rec {
		t.Helper()
		cfg := saramaConfig(v)
		if adjust != nil {
			adjust(cfg)
		}
		c, err := sarama.NewConsumer([]string{addr}, cfg)
		if err != nil {
			t.Fatalf("sarama NewConsumer: %v", err)
		}
		defer c.Close()
		pcs := map[tp]sarama.PartitionConsumer{}
		for x := range counts {
			pc, err := c.ConsumePartition(x.topic, x.part, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("sarama ConsumePartition(%s): %v", x, err)
			}
			defer pc.Close()
			pcs[x] = pc
		}
		timer := time.NewTimer(stepTimeout)
		defer timer.Stop()
		out := map[tp][]rec{}
		for x, pc := range pcs {
			for len(out[x]) < counts[x] {
				select {
				case m := <-pc.Messages():
					out[x] = append(out[x], fromSarama(m))
				case err := <-pc.Errors():
					t.Fatalf("sarama consume %s after %d records: %v", x, len(out[x]), err)
				case <-timer.C:
					t.Fatalf("sarama consume %s: %d of %d records within %v (HWM %d)", x, len(out[x]), counts[x], stepTimeout, pc.HighWaterMarkOffset())
				}
			}
		}
		return out
	}
}

// ---- kafka-go ----

func kafkagoHeaders(hs []hdr) []kafkago.Header {
	var out []kafkago.Header
	for _, h := range hs {
		out = append(out, kafkago.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

func fromKafkago(m kafkago.Message) rec {
	r := rec{Key: m.Key, Value: m.Value, Time: m.Time, Partition: int32(m.Partition), Offset: m.Offset}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, hdr{Key: h.Key, Value: h.Value})
	}
	return r
}

// tlog adapts t.Logf for client loggers that may run on the client's
// goroutines; it stops logging once the test is done.
type tlog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newTlog(t testing.TB, prefix string) kafkago.LoggerFunc {
	l := &tlog{t: t}
	t.Cleanup(func() { l.mu.Lock(); l.done = true; l.mu.Unlock() })
	return func(format string, args ...any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.done {
			l.t.Logf(prefix+format, args...)
		}
	}
}

// kafkagoConsume reads with one kafka.Reader per partition, without
// GroupID, from FirstOffset.
func kafkagoConsume(t testing.TB, addr string, counts map[tp]int) map[tp][]rec {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	out := map[tp][]rec{}
	var readers []*kafkago.Reader
	defer func() {
		// Close waits for the Reader's parked Fetch: close them together.
		var wg sync.WaitGroup
		for _, r := range readers {
			wg.Add(1)
			go func() { defer wg.Done(); r.Close() }()
		}
		wg.Wait()
	}()
	for x, n := range counts {
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers:   []string{addr},
			Topic:     x.topic,
			Partition: int(x.part),
			MinBytes:  1,
			MaxBytes:  1 << 20,
			// The Reader's read deadline is MaxWait and it asks the broker
			// for MaxWait less a quarter: keep the margin above scheduling
			// noise on a loaded 2-core machine.
			MaxWait:        500 * time.Millisecond,
			StartOffset:    kafkago.FirstOffset,
			ReadBackoffMin: 20 * time.Millisecond,
			ReadBackoffMax: 200 * time.Millisecond,
			ErrorLogger:    newTlog(t, "kafka-go reader: "),
		})
		readers = append(readers, r)
		for len(out[x]) < n {
			m, err := r.ReadMessage(c)
			if err != nil {
				t.Fatalf("kafka-go read %s after %d of %d records: %v", x, len(out[x]), n, err)
			}
			out[x] = append(out[x], fromKafkago(m))
		}
	}
	return out
}

// ---- franz-go ----

func kgoRecord(topic string, r rec) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Time}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return kr
}

func fromKgo(r *kgo.Record) rec {
	out := rec{Key: r.Key, Value: r.Value, Time: r.Timestamp, Partition: r.Partition, Offset: r.Offset}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, hdr{Key: h.Key, Value: h.Value})
	}
	return out
}

// kgoProduce produces rs (partitions as set) with franz-go and records the
// offsets.
func kgoProduce(t testing.TB, addr, topic string, rs []rec, opts ...kgo.Opt) {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.AllowAutoTopicCreation()}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	krs := make([]*kgo.Record, len(rs))
	for i, r := range rs {
		krs[i] = kgoRecord(topic, r)
	}
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if err := cl.ProduceSync(c, krs...).FirstErr(); err != nil {
		t.Fatalf("franz-go produce: %v", err)
	}
	for i, kr := range krs {
		rs[i].Offset = kr.Offset
	}
}

// kgoConsume reads the partitions from their start with one direct
// (groupless) franz-go consumer.
func kgoConsume(t testing.TB, addr string, counts map[tp]int) map[tp][]rec {
	t.Helper()
	return kgoConsumeWith(t, addr, counts)
}

// kgoConsumeWith is kgoConsume with extra client options (an isolation
// level, for one).
func kgoConsumeWith(t testing.TB, addr string, counts map[tp]int, opts ...kgo.Opt) map[tp][]rec {
	t.Helper()
	offsets := map[string]map[int32]kgo.Offset{}
	total := 0
	for x, n := range counts {
		if offsets[x.topic] == nil {
			offsets[x.topic] = map[int32]kgo.Offset{}
		}
		offsets[x.topic][x.part] = kgo.NewOffset().AtStart()
		total += n
	}
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	out := map[tp][]rec{}
	for got := 0; got < total; {
		fs := cl.PollFetches(c)
		if err := fs.Err0(); err != nil {
			t.Fatalf("franz-go consume after %d of %d records: %v", got, total, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			x := tp{r.Topic, r.Partition}
			out[x] = append(out[x], fromKgo(r))
			got++
		})
	}
	return out
}

// ---- broker capabilities ----

// advertised reports whether the broker at addr lists API key in its
// ApiVersions response.
func advertised(t testing.TB, addr string, key int16) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(c, cl)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == key {
			return true
		}
	}
	return false
}

// requireAPIs skips t unless the broker advertises every key in keys; the
// skip message names the missing ones.
func requireAPIs(t testing.TB, addr string, keys ...int16) {
	t.Helper()
	var missing []string
	for _, k := range keys {
		if !advertised(t, addr, k) {
			name := kmsg.NameForKey(k)
			missing = append(missing, fmt.Sprintf("%s (key %d)", name, k))
		}
	}
	if len(missing) > 0 {
		t.Skipf("broker does not advertise %v yet", missing)
	}
}
