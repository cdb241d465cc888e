package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

var kafkagoCodecs = []struct {
	name  string
	codec kafkago.Compression
}{
	{"none", 0},
	{"gzip", kafkago.Gzip},
	{"snappy", kafkago.Snappy},
	{"lz4", kafkago.Lz4},
	{"zstd", kafkago.Zstd},
}

var kafkagoAcks = []struct {
	name string
	acks kafkago.RequiredAcks
}{
	{"all", kafkago.RequireAll},
	{"one", kafkago.RequireOne},
	{"none", kafkago.RequireNone},
}

// kafkagoBalancers spread records over partitions in different ways.
var kafkagoBalancers = []kafkago.Balancer{
	&kafkago.RoundRobin{},
	&kafkago.LeastBytes{},
	&kafkago.Hash{},
	kafkago.CRC32Balancer{},
	kafkago.Murmur2Balancer{},
}

// newKafkagoTransport is a private Transport, so no pooled connection
// outlives its broker or test.
func newKafkagoTransport(t testing.TB) *kafkago.Transport {
	tr := &kafkago.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second, ClientID: "weir-e2e-kafka-go"}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// kafkagoWrite writes rs with a kafka.Writer. With a Balancer it records
// the partitions and offsets the Writer's Completion reports; with bal nil
// the records keep their partitions (a BalancerFunc honours them) and, for
// RequireNone, which reports nothing, get offsets in send order.
func kafkagoWrite(t testing.TB, addr, topic string, rs []rec, acks kafkago.RequiredAcks, codec kafkago.Compression, bal kafkago.Balancer) {
	t.Helper()
	byTime := map[int64]int{}
	for i, r := range rs {
		if _, dup := byTime[r.Time.UnixMilli()]; dup {
			t.Fatalf("record %d: timestamps must be unique to match completions", i)
		}
		byTime[r.Time.UnixMilli()] = i
	}
	if bal == nil {
		bal = kafkago.BalancerFunc(func(m kafkago.Message, partitions ...int) int {
			return int(rs[byTime[m.Time.UnixMilli()]].Partition)
		})
	}
	var mu sync.Mutex
	var completed int
	w := &kafkago.Writer{
		Addr:                   kafkago.TCP(addr),
		Topic:                  topic,
		Balancer:               bal,
		RequiredAcks:           acks,
		Compression:            codec,
		BatchTimeout:           5 * time.Millisecond,
		BatchSize:              1000,
		WriteTimeout:           10 * time.Second,
		ReadTimeout:            10 * time.Second,
		MaxAttempts:            5,
		WriteBackoffMin:        20 * time.Millisecond,
		WriteBackoffMax:        200 * time.Millisecond,
		AllowAutoTopicCreation: true,
		Transport:              newKafkagoTransport(t),
		ErrorLogger:            newTlog(t, "kafka-go writer: "),
		Completion: func(ms []kafkago.Message, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				return
			}
			for _, m := range ms {
				// At RequireNone the Writer learns no partition or offset.
				if acks != kafkago.RequireNone {
					i := byTime[m.Time.UnixMilli()]
					rs[i].Partition, rs[i].Offset = int32(m.Partition), m.Offset
				}
				completed++
			}
		},
	}
	msgs := make([]kafkago.Message, len(rs))
	for i, r := range rs {
		msgs[i] = kafkago.Message{Key: r.Key, Value: r.Value, Headers: kafkagoHeaders(r.Headers), Time: r.Time}
	}
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if err := w.WriteMessages(c, msgs...); err != nil {
		t.Fatalf("kafka-go WriteMessages (acks=%d, %v): %v", acks, codec, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("kafka-go Writer.Close: %v", err)
	}
	if completed != len(rs) {
		t.Fatalf("kafka-go Completion saw %d of %d messages", completed, len(rs))
	}
	if acks == kafkago.RequireNone {
		assignOffsets(rs)
	}
}

// TestKafkaGoWriterReader writes with kafka.Writer at every RequiredAcks
// level and compression codec, spread over three partitions by the
// balancers, and reads each partition back with a groupless kafka.Reader
// from FirstOffset, comparing bytes, headers, times and offsets.
func TestKafkaGoWriterReader(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "3")
	n := 0
	for _, acks := range kafkagoAcks {
		for _, codec := range kafkagoCodecs {
			bal := kafkagoBalancers[n%len(kafkagoBalancers)]
			n++
			name := fmt.Sprintf("acks=%s/%s/%T", acks.name, codec.name, bal)
			if acks.acks == kafkago.RequireNone {
				// Keep makeRecs' partitions: the offsets are then known.
				bal, name = nil, fmt.Sprintf("acks=%s/%s", acks.name, codec.name)
			}
			t.Run(name, func(t *testing.T) {
				topic := fmt.Sprintf("kafkago-%s-%s", acks.name, codec.name)
				want := makeRecs(topic, 40, 3)
				kafkagoWrite(t, w.Addr, topic, want, acks.acks, codec.codec, bal)
				if acks.acks != kafkago.RequireNone {
					checkContiguous(t, want)
				}
				if used := len(byPartition(want)); bal != nil && used < 2 {
					t.Errorf("balancer %T put all %d records in one partition", bal, len(want))
				}
				checkTopic(t, "kafka-go", kafkagoConsume, w.Addr, topic, want, nullIgnored)
			})
		}
	}
}

// TestKafkaGoConn drives the kafka.Conn calls with versions kafka-go
// hard-codes or negotiates on its own: ApiVersions v0, Metadata v1
// (DialLeader, ReadPartitions, Brokers, Controller), ListOffsets v1
// (ReadFirstOffset, ReadLastOffset, ReadOffset by time), Conn-level
// produce with each codec and ReadBatch; plus kafka.Client's Metadata,
// ListOffsets and Fetch.
func TestKafkaGoConn(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "3")
	topic := "kafkago-conn"
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()

	// DialLeader on an unknown topic: Metadata v1 (no allow-auto-create
	// field, so auto-creation applies) must create it and name a leader.
	var conn *kafkago.Conn
	deadline := time.Now().Add(stepTimeout)
	for {
		var err error
		conn, err = kafkago.DialLeader(c, "tcp", w.Addr, topic, 1)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !errors.Is(err, kafkago.LeaderNotAvailable) && !errors.Is(err, kafkago.UnknownTopicOrPartition) {
			t.Fatalf("DialLeader(%s, 1): %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(stepTimeout)); err != nil {
		t.Fatal(err)
	}

	vs, err := conn.ApiVersions()
	if err != nil {
		t.Fatalf("Conn.ApiVersions (v0): %v", err)
	}
	if len(vs) == 0 {
		t.Fatal("Conn.ApiVersions: no APIs")
	}

	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("Conn.ReadPartitions (Metadata v1): %v", err)
	}
	if len(parts) != 3 {
		t.Fatalf("ReadPartitions: %d partitions, want 3: %+v", len(parts), parts)
	}
	host, port, _ := net.SplitHostPort(w.Addr)
	for i, p := range parts {
		if p.Topic != topic || p.ID != i {
			t.Errorf("ReadPartitions[%d] = %s/%d", i, p.Topic, p.ID)
		}
		if p.Leader.Host != host || strconv.Itoa(p.Leader.Port) != port {
			t.Errorf("partition %d leader %s:%d, want %s", p.ID, p.Leader.Host, p.Leader.Port, w.Addr)
		}
		if len(p.Replicas) != 1 || len(p.Isr) != 1 || p.Replicas[0].ID != p.Leader.ID || p.Isr[0].ID != p.Leader.ID {
			t.Errorf("partition %d replicas %+v isr %+v, want the leader %d only", p.ID, p.Replicas, p.Isr, p.Leader.ID)
		}
	}
	brokers, err := conn.Brokers()
	if err != nil || len(brokers) != 1 || brokers[0].Host != host || strconv.Itoa(brokers[0].Port) != port {
		t.Errorf("Conn.Brokers = %+v, %v; want one broker at %s", brokers, err, w.Addr)
	}
	ctrl, err := conn.Controller()
	if err != nil || len(brokers) == 1 && ctrl.ID != brokers[0].ID {
		t.Errorf("Conn.Controller = %+v, %v; want broker %+v", ctrl, err, brokers)
	}

	if first, last, err := conn.ReadOffsets(); err != nil || first != 0 || last != 0 {
		t.Fatalf("empty partition: ReadOffsets = %d, %d, %v; want 0, 0", first, last, err)
	}

	// Conn-level produce, one request per codec, monotonic timestamps so
	// ListOffsets by time has one right answer.
	var want []rec
	codecs := []kafkago.CompressionCodec{nil}
	for _, cc := range kafkagoCodecs[1:] {
		codecs = append(codecs, cc.codec.Codec())
	}
	for ci, codec := range codecs {
		rs := makeRecs(fmt.Sprintf("conn-%d", ci), 7, 0)
		msgs := make([]kafkago.Message, len(rs))
		for i := range rs {
			rs[i].Partition = 1
			rs[i].Time = baseTime.Add(time.Duration(len(want)+i) * time.Second)
			msgs[i] = kafkago.Message{Key: rs[i].Key, Value: rs[i].Value, Headers: kafkagoHeaders(rs[i].Headers), Time: rs[i].Time}
		}
		_, part, off, _, err := conn.WriteCompressedMessagesAt(codec, msgs...)
		if err != nil {
			t.Fatalf("Conn.WriteCompressedMessagesAt(%v): %v", codec, err)
		}
		if part != 1 || off != int64(len(want)) {
			t.Errorf("codec %v: written at partition %d offset %d, want 1/%d", codec, part, off, len(want))
		}
		for i := range rs {
			rs[i].Offset = int64(len(want) + i)
		}
		want = append(want, rs...)
	}

	first, err := conn.ReadFirstOffset()
	if err != nil || first != 0 {
		t.Errorf("ReadFirstOffset (ListOffsets v1, -2) = %d, %v; want 0", first, err)
	}
	last, err := conn.ReadLastOffset()
	if err != nil || last != int64(len(want)) {
		t.Errorf("ReadLastOffset (ListOffsets v1, -1) = %d, %v; want %d", last, err, len(want))
	}
	for _, k := range []int{0, 1, 17, len(want) - 1} {
		got, err := conn.ReadOffset(want[k].Time)
		if err != nil || got != int64(k) {
			t.Errorf("ReadOffset(time of offset %d) = %d, %v", k, got, err)
		}
		got, err = conn.ReadOffset(want[k].Time.Add(-500 * time.Millisecond))
		if err != nil || got != int64(k) {
			t.Errorf("ReadOffset(500ms before offset %d) = %d, %v", k, got, err)
		}
	}
	if got, err := conn.ReadOffset(baseTime.Add(-time.Hour)); err != nil || got != 0 {
		t.Errorf("ReadOffset(before everything) = %d, %v; want 0", got, err)
	}

	// ReadBatch from offset 0 (Fetch at the version kafka-go negotiates).
	if _, err := conn.Seek(0, kafkago.SeekAbsolute); err != nil {
		t.Fatal(err)
	}
	var got []rec
	for len(got) < len(want) {
		b := conn.ReadBatch(1, 1<<20)
		for {
			m, err := b.ReadMessage()
			if err != nil {
				break
			}
			got = append(got, fromKafkago(m))
		}
		if err := b.Close(); err != nil {
			t.Fatalf("ReadBatch after %d of %d records: %v", len(got), len(want), err)
		}
		if hwm := b.HighWaterMark(); hwm != int64(len(want)) {
			t.Errorf("ReadBatch high watermark %d, want %d", hwm, len(want))
		}
	}
	compareRecs(t, "Conn.ReadBatch", want, got, nullIgnored)

	// kafka.Client (Transport, negotiated versions).
	cl := &kafkago.Client{Addr: kafkago.TCP(w.Addr), Timeout: 10 * time.Second, Transport: newKafkagoTransport(t)}
	md, err := cl.Metadata(c, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("Client.Metadata: %v", err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Name != topic || len(md.Topics[0].Partitions) != 3 || md.Topics[0].Error != nil {
		t.Errorf("Client.Metadata topics = %+v", md.Topics)
	}
	lo, err := cl.ListOffsets(c, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
		topic: {kafkago.FirstOffsetOf(1), kafkago.LastOffsetOf(1), kafkago.TimeOffsetOf(1, want[10].Time)},
	}})
	if err != nil {
		t.Fatalf("Client.ListOffsets: %v", err)
	}
	// Client.Fetch (the Transport's Fetch, up to v11) from offset 10: the
	// batch holding 10 starts at 7, so skip what precedes 10.
	fr, err := cl.Fetch(c, &kafkago.FetchRequest{Topic: topic, Partition: 1, Offset: 10, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	if err != nil || fr.Error != nil {
		t.Fatalf("Client.Fetch = %v / %v", err, fr)
	}
	if fr.HighWatermark != int64(len(want)) || fr.LastStableOffset != int64(len(want)) || fr.LogStartOffset != 0 {
		t.Errorf("Client.Fetch: high watermark %d, last stable %d, log start %d; want %d, %d, 0", fr.HighWatermark, fr.LastStableOffset, fr.LogStartOffset, len(want), len(want))
	}
	got = got[:0]
	for {
		r, err := fr.Records.ReadRecord()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Client.Fetch records after %d: %v", len(got), err)
			}
			break
		}
		if r.Offset < 10 {
			continue
		}
		g := rec{Time: r.Time, Partition: 1, Offset: r.Offset}
		if g.Key, err = kafkago.ReadAll(r.Key); err != nil {
			t.Fatal(err)
		}
		if g.Value, err = kafkago.ReadAll(r.Value); err != nil {
			t.Fatal(err)
		}
		for _, h := range r.Headers {
			g.Headers = append(g.Headers, hdr{Key: h.Key, Value: h.Value})
		}
		got = append(got, g)
	}
	compareRecs(t, "Client.Fetch", want[10:], got, nullIgnored)

	po := lo.Topics[topic]
	if len(po) != 1 || po[0].Error != nil || po[0].FirstOffset != 0 || po[0].LastOffset != int64(len(want)) {
		t.Errorf("Client.ListOffsets = %+v, want first 0 last %d", po, len(want))
	} else if ts, ok := po[0].Offsets[10]; !ok || ts.UnixMilli() != want[10].Time.UnixMilli() {
		t.Errorf("Client.ListOffsets by time: offsets %v, want 10 at %d", po[0].Offsets, want[10].Time.UnixMilli())
	}
}

// TestKafkaGoAdmin creates, configures, grows, describes and deletes topics
// through kafka.Client and through kafka.Conn (CreateTopics v0-2,
// DeleteTopics v0-1 fixed). It skips until the broker advertises the admin
// APIs.
func TestKafkaGoAdmin(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--auto-create-topics=false")
	requireAPIs(t, w.Addr, 19, 20, 32, 37, 44)
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	cl := &kafkago.Client{Addr: kafkago.TCP(w.Addr), Timeout: 10 * time.Second, Transport: newKafkagoTransport(t)}

	topic := "kafkago-admin-client"
	res, err := cl.CreateTopics(c, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic:             topic,
		NumPartitions:     2,
		ReplicationFactor: 1,
		ConfigEntries:     []kafkago.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}},
	}}})
	if err != nil {
		t.Fatalf("Client.CreateTopics: %v", err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatalf("Client.CreateTopics(%s): %v", topic, err)
	}
	res, err = cl.CreateTopics(c, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || !errors.Is(res.Errors[topic], kafkago.TopicAlreadyExists) {
		t.Errorf("Client.CreateTopics of an existing topic: %v / %v, want %v", err, res.Errors, kafkago.TopicAlreadyExists)
	}

	dc, err := cl.DescribeConfigs(c, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic,
		ResourceName: topic,
		ConfigNames:  []string{"retention.ms"},
	}}})
	if err != nil {
		t.Fatalf("Client.DescribeConfigs: %v", err)
	}
	if len(dc.Resources) != 1 || dc.Resources[0].Error != nil {
		t.Fatalf("Client.DescribeConfigs = %+v", dc.Resources)
	}
	found := false
	for _, e := range dc.Resources[0].ConfigEntries {
		if e.ConfigName == "retention.ms" {
			found = true
			if e.ConfigValue != "3600000" {
				t.Errorf("DescribeConfigs retention.ms = %q, want 3600000", e.ConfigValue)
			}
		}
	}
	if !found {
		t.Errorf("DescribeConfigs: retention.ms missing from %+v", dc.Resources[0].ConfigEntries)
	}

	// IncrementalAlterConfigs, then DescribeConfigs of every config.
	ia, err := cl.IncrementalAlterConfigs(c, &kafkago.IncrementalAlterConfigsRequest{Resources: []kafkago.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic,
		ResourceName: topic,
		Configs: []kafkago.IncrementalAlterConfigsRequestConfig{
			// Set explicitly (to the default, delete: the records written
			// below carry null keys, which a compacted topic refuses, as
			// Kafka does).
			{Name: "cleanup.policy", Value: "delete", ConfigOperation: kafkago.ConfigOperationSet},
			{Name: "retention.ms", ConfigOperation: kafkago.ConfigOperationDelete},
		},
	}}})
	if err != nil || len(ia.Resources) != 1 || ia.Resources[0].Error != nil {
		t.Fatalf("Client.IncrementalAlterConfigs = %+v, %v", ia, err)
	}
	dc, err = cl.DescribeConfigs(c, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic,
		ResourceName: topic,
	}}})
	if err != nil || len(dc.Resources) != 1 || dc.Resources[0].Error != nil {
		t.Fatalf("Client.DescribeConfigs (all) = %+v, %v", dc, err)
	}
	all := map[string]kafkago.DescribeConfigResponseConfigEntry{}
	for _, e := range dc.Resources[0].ConfigEntries {
		all[e.ConfigName] = e
	}
	if e := all["cleanup.policy"]; e.ConfigValue != "delete" || e.ConfigSource != 1 { // DYNAMIC_TOPIC_CONFIG
		t.Errorf("cleanup.policy after IncrementalAlterConfigs = %+v, want delete set on the topic", e)
	}
	if e, ok := all["retention.ms"]; !ok || e.ConfigValue == "3600000" {
		t.Errorf("retention.ms after IncrementalAlterConfigs delete = %+v (listed %v), want the default", e, ok)
	}
	for _, name := range []string{"max.message.bytes", "segment.bytes", "retention.bytes", "message.timestamp.type"} {
		if _, ok := all[name]; !ok {
			t.Errorf("DescribeConfigs of all configs lacks %s (got %d entries)", name, len(all))
		}
	}

	// CreatePartitions: 2 -> 3, then the new topic is usable on all three.
	cp, err := cl.CreatePartitions(c, &kafkago.CreatePartitionsRequest{Topics: []kafkago.TopicPartitionsConfig{{Name: topic, Count: 3}}})
	if err != nil || cp.Errors[topic] != nil {
		t.Fatalf("Client.CreatePartitions(3) = %v, %v", cp, err)
	}
	want := makeRecs(topic, 12, 3)
	kafkagoWrite(t, w.Addr, topic, want, kafkago.RequireAll, 0, nil)
	checkContiguous(t, want)
	checkTopic(t, "kafka-go", kafkagoConsume, w.Addr, topic, want, nullIgnored)

	dt, err := cl.DeleteTopics(c, &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil || dt.Errors[topic] != nil {
		t.Fatalf("Client.DeleteTopics: %v / %v", err, dt.Errors)
	}
	dt, err = cl.DeleteTopics(c, &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil || !errors.Is(dt.Errors[topic], kafkago.UnknownTopicOrPartition) {
		t.Errorf("Client.DeleteTopics of a deleted topic: %v / %v, want %v", err, dt.Errors, kafkago.UnknownTopicOrPartition)
	}

	// Conn-level CreateTopics/DeleteTopics on the controller.
	conn, err := kafkago.DialContext(c, "tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(stepTimeout)); err != nil {
		t.Fatal(err)
	}
	ctopic := "kafkago-admin-conn"
	if err := conn.CreateTopics(kafkago.TopicConfig{Topic: ctopic, NumPartitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatalf("Conn.CreateTopics: %v", err)
	}
	parts, err := conn.ReadPartitions(ctopic)
	if err != nil || len(parts) != 3 {
		t.Errorf("ReadPartitions after Conn.CreateTopics = %d partitions, %v; want 3", len(parts), err)
	}
	if err := conn.DeleteTopics(ctopic); err != nil {
		t.Fatalf("Conn.DeleteTopics: %v", err)
	}
	deadline := time.Now().Add(stepTimeout)
	for {
		_, err := conn.ReadPartitions(ctopic)
		if errors.Is(err, kafkago.UnknownTopicOrPartition) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReadPartitions after Conn.DeleteTopics: %v, want %v", err, kafkago.UnknownTopicOrPartition)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
