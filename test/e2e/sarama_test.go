package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// saramaVersions are the Config.Version values exercised: 2.1 (the Java
// 4.x baseline; Produce v7, Fetch v10, Metadata v7), 3.6, and 3.9 (the
// newest 3.x, which opens with ApiVersions v4 and must fall back to v3).
var saramaVersions = []struct {
	name string
	v    sarama.KafkaVersion
}{
	{"V2_1", sarama.V2_1_0_0},
	{"V3_6", sarama.V3_6_0_0},
	{"V3_9", sarama.V3_9_0_0},
}

var saramaCodecs = []sarama.CompressionCodec{
	sarama.CompressionNone,
	sarama.CompressionGZIP,
	sarama.CompressionSnappy,
	sarama.CompressionLZ4,
	sarama.CompressionZSTD,
}

var saramaAcks = []struct {
	name string
	acks sarama.RequiredAcks
}{
	{"all", sarama.WaitForAll},
	{"local", sarama.WaitForLocal},
	{"none", sarama.NoResponse},
}

// saramaProduceAsyncNoResponse sends rs with an AsyncProducer at acks=0:
// the broker sends no Produce response, so the offsets are the order in
// which the records were sent.
func saramaProduceAsyncNoResponse(t testing.TB, addr string, cfg *sarama.Config, topic string, rs []rec) {
	t.Helper()
	p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama NewAsyncProducer: %v", err)
	}
	go func() {
		for _, r := range rs {
			p.Input() <- saramaMessage(topic, r)
		}
	}()
	timer := time.NewTimer(stepTimeout)
	defer timer.Stop()
	for done := 0; done < len(rs); done++ {
		select {
		case <-p.Successes():
		case perr := <-p.Errors():
			t.Fatalf("sarama async produce at acks=0: %v", perr.Err)
		case <-timer.C:
			t.Fatalf("sarama async produce at acks=0: %d of %d acknowledged within %v", done, len(rs), stepTimeout)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("sarama async producer close: %v", err)
	}
	assignOffsets(rs)
}

// TestSaramaProduceConsume produces with sarama at every version, acks
// level and compression codec (one topic each, one subtest each), then
// reads every partition back with sarama's partition consumer at the same
// version and compares keys, values, headers, timestamps and offsets byte
// for byte.
func TestSaramaProduceConsume(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "3")
	for _, ver := range saramaVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel() // the versions share the broker, not topics
			wants := map[string][]rec{}
			for _, acks := range saramaAcks {
				for _, codec := range saramaCodecs {
					t.Run(fmt.Sprintf("produce/acks=%s/%s", acks.name, codec), func(t *testing.T) {
						topic := fmt.Sprintf("sarama-%s-%s-%s", ver.name, acks.name, codec)
						cfg := saramaConfig(ver.v)
						cfg.Producer.RequiredAcks = acks.acks
						cfg.Producer.Compression = codec
						want := makeRecs(topic, 30, 3)
						if acks.acks == sarama.NoResponse {
							saramaProduceAsyncNoResponse(t, w.Addr, cfg, topic, want)
						} else {
							saramaProduceSync(t, w.Addr, cfg, topic, want)
							checkContiguous(t, want)
						}
						wants[topic] = want
					})
				}
			}
			t.Run("consume", func(t *testing.T) {
				checkTopics(t, "sarama", saramaConsumer(ver.v), w.Addr, wants, nullAware)
			})
		})
	}
}

// TestSaramaIdempotentProducer produces in several rounds with
// Producer.Idempotent (InitProducerId, then sequence numbers per
// partition) and checks every record landed exactly once, in order.
func TestSaramaIdempotentProducer(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "3")
	for _, ver := range saramaVersions {
		for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionZSTD} {
			t.Run(fmt.Sprintf("%s/%s", ver.name, codec), func(t *testing.T) {
				topic := fmt.Sprintf("sarama-idem-%s-%s", ver.name, codec)
				cfg := saramaConfig(ver.v)
				cfg.Producer.Idempotent = true
				cfg.Producer.RequiredAcks = sarama.WaitForAll
				cfg.Producer.Compression = codec
				cfg.Producer.Retry.Max = 5
				cfg.Net.MaxOpenRequests = 1
				p, err := sarama.NewSyncProducer([]string{w.Addr}, cfg)
				if err != nil {
					t.Fatalf("sarama NewSyncProducer (idempotent): %v", err)
				}
				defer p.Close()
				var want []rec
				for round := range 4 {
					rs := makeRecs(fmt.Sprintf("%s-r%d", topic, round), 25, 3)
					msgs := make([]*sarama.ProducerMessage, len(rs))
					for i, r := range rs {
						msgs[i] = saramaMessage(topic, r)
					}
					if err := p.SendMessages(msgs); err != nil {
						t.Fatalf("round %d: idempotent SendMessages: %v", round, err)
					}
					// And one at a time, each its own batch and sequence.
					for i := 0; i < 3; i++ {
						r := makeRecs(fmt.Sprintf("%s-r%d-single%d", topic, round, i), 1, 3)[0]
						r.Partition = int32(i)
						m := saramaMessage(topic, r)
						if _, _, err := p.SendMessage(m); err != nil {
							t.Fatalf("round %d: idempotent SendMessage: %v", round, err)
						}
						rs = append(rs, r)
						msgs = append(msgs, m)
					}
					for i, m := range msgs {
						rs[i].Offset = m.Offset
					}
					want = append(want, rs...)
				}
				checkContiguous(t, want)
				checkTopic(t, "sarama", saramaConsumer(ver.v), w.Addr, topic, want, nullAware)
				// read_committed: with no transactions the last stable
				// offset is the high watermark, so everything is visible.
				readCommitted := saramaConsumerWith(ver.v, func(c *sarama.Config) { c.Consumer.IsolationLevel = sarama.ReadCommitted })
				checkTopic(t, "sarama read_committed", readCommitted, w.Addr, topic, want, nullAware)
			})
		}
	}
}

// TestSaramaClusterAdmin drives sarama's ClusterAdmin: CreateTopic with
// configs, ListTopics, DescribeConfig, DeleteTopic. It skips until the
// broker advertises CreateTopics, DeleteTopics and DescribeConfigs.
func TestSaramaClusterAdmin(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	requireAPIs(t, w.Addr, 19, 20, 32)
	for _, ver := range saramaVersions {
		t.Run(ver.name, func(t *testing.T) {
			topic := "sarama-admin-" + ver.name
			cfg := saramaConfig(ver.v)
			cfg.Metadata.AllowAutoTopicCreation = false
			admin, err := sarama.NewClusterAdmin([]string{w.Addr}, cfg)
			if err != nil {
				t.Fatalf("NewClusterAdmin: %v", err)
			}
			defer admin.Close()

			retention, cleanup := "3600000", "delete"
			detail := &sarama.TopicDetail{
				NumPartitions:     3,
				ReplicationFactor: 1,
				ConfigEntries:     map[string]*string{"retention.ms": &retention, "cleanup.policy": &cleanup},
			}
			if err := admin.CreateTopic(topic, detail, true); err != nil {
				t.Fatalf("CreateTopic(validateOnly): %v", err)
			}
			if err := admin.CreateTopic(topic, detail, false); err != nil {
				t.Fatalf("CreateTopic: %v", err)
			}
			err = admin.CreateTopic(topic, detail, false)
			if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				t.Errorf("CreateTopic of an existing topic: %v, want %v", err, sarama.ErrTopicAlreadyExists)
			}

			topics, err := admin.ListTopics()
			if err != nil {
				t.Fatalf("ListTopics: %v", err)
			}
			d, ok := topics[topic]
			if !ok {
				t.Fatalf("ListTopics: %s missing from %v", topic, joinKeys(topics))
			}
			if d.NumPartitions != 3 {
				t.Errorf("ListTopics: %s has %d partitions, want 3", topic, d.NumPartitions)
			}
			if v := d.ConfigEntries["retention.ms"]; v == nil || *v != retention {
				t.Errorf("ListTopics: retention.ms = %v, want %s", deref(v), retention)
			}

			results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic}},
				sarama.DescribeConfigsOptions{IncludeSynonyms: true, IncludeDocumentation: true})
			if err != nil {
				t.Fatalf("DescribeConfigs: %v", err)
			}
			if len(results) != 1 || results[0].Name != topic || results[0].ErrorCode != sarama.ErrNoError {
				t.Fatalf("DescribeConfigs results = %+v", results)
			}
			got := map[string]sarama.ConfigEntry{}
			for _, e := range results[0].Configs {
				got[e.Name] = e
			}
			for name, want := range map[string]string{"retention.ms": retention, "cleanup.policy": cleanup} {
				e, ok := got[name]
				switch {
				case !ok:
					t.Errorf("DescribeConfigs: %s missing", name)
				case e.Value != want:
					t.Errorf("DescribeConfigs: %s = %q, want %q", name, e.Value, want)
				case e.Default || e.Source != sarama.SourceTopic:
					t.Errorf("DescribeConfigs: %s set at creation but reported with source %v (default %v)", name, e.Source, e.Default)
				}
			}

			// The created topic works: produce to its three partitions.
			pcfg := saramaConfig(ver.v)
			pcfg.Metadata.AllowAutoTopicCreation = false
			pcfg.Producer.RequiredAcks = sarama.WaitForAll
			want := makeRecs(topic, 9, 3)
			saramaProduceSync(t, w.Addr, pcfg, topic, want)
			checkContiguous(t, want)
			checkTopic(t, "sarama", saramaConsumer(ver.v), w.Addr, topic, want, nullAware)

			if err := admin.DeleteTopic(topic); err != nil {
				t.Fatalf("DeleteTopic: %v", err)
			}
			deadline := time.Now().Add(stepTimeout)
			for {
				topics, err := admin.ListTopics()
				if err != nil {
					t.Fatalf("ListTopics after delete: %v", err)
				}
				if _, ok := topics[topic]; !ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s still listed %v after DeleteTopic", topic, stepTimeout)
				}
				time.Sleep(50 * time.Millisecond)
			}
			err = admin.DeleteTopic(topic)
			if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				t.Errorf("DeleteTopic of a deleted topic: %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
			}
		})
	}
}

func joinKeys[V any](m map[string]V) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return strings.Join(ks, ",")
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestSaramaMetadataAndOffsets checks what sarama's Client learns from
// Metadata (brokers, controller, leaders, partitions; an unknown topic is
// not auto-created when the request says so) and ListOffsets (oldest,
// newest and by timestamp).
func TestSaramaMetadataAndOffsets(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "3")
	for _, ver := range []struct {
		name  string
		v     sarama.KafkaVersion
		codec sarama.CompressionCodec
	}{
		{"V2_1", sarama.V2_1_0_0, sarama.CompressionGZIP},
		{"V3_6", sarama.V3_6_0_0, sarama.CompressionZSTD},
		{"V3_9", sarama.V3_9_0_0, sarama.CompressionLZ4},
	} {
		t.Run(ver.name, func(t *testing.T) {
			topic := "sarama-md-" + ver.name
			// Compressed, so ListOffsets by time must look inside batches.
			pcfg := saramaConfig(ver.v)
			pcfg.Producer.RequiredAcks = sarama.WaitForAll
			pcfg.Producer.Compression = ver.codec
			want := makeRecs(topic, 30, 3)
			saramaProduceSync(t, w.Addr, pcfg, topic, want)
			checkContiguous(t, want)

			cfg := saramaConfig(ver.v)
			cfg.Metadata.AllowAutoTopicCreation = false
			cfg.Metadata.Retry.Max = 1
			cl, err := sarama.NewClient([]string{w.Addr}, cfg)
			if err != nil {
				t.Fatalf("sarama NewClient: %v", err)
			}
			defer cl.Close()

			if bs := cl.Brokers(); len(bs) != 1 || bs[0].Addr() != w.Addr {
				t.Errorf("Brokers() = %v, want one at %s", bs, w.Addr)
			}
			if ctrl, err := cl.Controller(); err != nil || ctrl.Addr() != w.Addr {
				t.Errorf("Controller() = %v, %v; want %s", ctrl, err, w.Addr)
			}
			parts, err := cl.Partitions(topic)
			if err != nil || len(parts) != 3 {
				t.Fatalf("Partitions(%s) = %v, %v; want 3", topic, parts, err)
			}
			for _, p := range parts {
				b, err := cl.Leader(topic, p)
				if err != nil || b.Addr() != w.Addr {
					t.Errorf("Leader(%s, %d) = %v, %v", topic, p, b, err)
				}
				if rs, err := cl.Replicas(topic, p); err != nil || len(rs) != 1 || rs[0] != b.ID() {
					t.Errorf("Replicas(%s, %d) = %v, %v; want [%d]", topic, p, rs, err, b.ID())
				}
				if isr, err := cl.InSyncReplicas(topic, p); err != nil || len(isr) != 1 || isr[0] != b.ID() {
					t.Errorf("InSyncReplicas(%s, %d) = %v, %v; want [%d]", topic, p, isr, err, b.ID())
				}
			}

			absent := topic + "-absent"
			if _, err := cl.Partitions(absent); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				t.Errorf("Partitions(%s) without auto-create: %v, want %v", absent, err, sarama.ErrUnknownTopicOrPartition)
			}
			if err := cl.RefreshMetadata(); err != nil {
				t.Fatalf("RefreshMetadata: %v", err)
			}
			topics, err := cl.Topics()
			if err != nil {
				t.Fatalf("Topics: %v", err)
			}
			if slices.Contains(topics, absent) {
				t.Errorf("%s was created by a Metadata request with allow_auto_topic_creation=false", absent)
			}
			if !slices.Contains(topics, topic) {
				t.Errorf("Topics() = %v, missing %s", topics, topic)
			}

			for p, g := range byPartition(want) {
				if o, err := cl.GetOffset(topic, p, sarama.OffsetOldest); err != nil || o != 0 {
					t.Errorf("GetOffset(%d, oldest) = %d, %v; want 0", p, o, err)
				}
				if o, err := cl.GetOffset(topic, p, sarama.OffsetNewest); err != nil || o != int64(len(g)) {
					t.Errorf("GetOffset(%d, newest) = %d, %v; want %d", p, o, err, len(g))
				}
				// By time: the first offset whose timestamp is at or after
				// the target (the timestamps step back now and then).
				for _, r := range g {
					for _, target := range []int64{r.Time.UnixMilli(), r.Time.UnixMilli() + 1} {
						wantOff := int64(-1)
						for _, c := range g {
							if c.Time.UnixMilli() >= target {
								wantOff = c.Offset
								break
							}
						}
						if o, err := cl.GetOffset(topic, p, target); err != nil || o != wantOff {
							t.Errorf("GetOffset(%d, time %d) = %d, %v; want %d", p, target, o, err, wantOff)
						}
					}
				}
			}
		})
	}
}

// TestSaramaIdempotentAcrossRestart keeps one idempotent producer open
// while the broker is SIGKILLed and restarted: its next batches carry the
// same producer id with sequences continuing, which the broker must accept
// (the producer state comes back from the log) without duplicating
// anything.
func TestSaramaIdempotentAcrossRestart(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "2")
	topic := "sarama-idem-restart"
	cfg := saramaConfig(sarama.V3_6_0_0)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 50
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Metadata.Retry.Max = 50
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer([]string{w.Addr}, cfg)
	if err != nil {
		t.Fatalf("sarama NewSyncProducer: %v", err)
	}
	defer p.Close()
	send := func(tag string) []rec {
		rs := makeRecs(tag, 20, 2)
		msgs := make([]*sarama.ProducerMessage, len(rs))
		for i, r := range rs {
			msgs[i] = saramaMessage(topic, r)
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("%s: SendMessages: %v\nbroker log tail:\n%s", tag, err, lastLines(w.Logs(), 30))
		}
		for i, m := range msgs {
			rs[i].Offset = m.Offset
		}
		return rs
	}
	want := send("before")
	w.Restart(true)
	want = append(want, send("after")...)
	checkContiguous(t, want)
	checkTopic(t, "sarama", saramaConsumer(sarama.V3_6_0_0), w.Addr, topic, want, nullAware)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestSaramaLargeRecords produces records larger than the consumers' fetch
// sizes: the broker must still return a whole first batch (KIP-74), and
// sarama and franz-go must read them intact.
func TestSaramaLargeRecords(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	topic := "sarama-large"
	want := makeRecs(topic, 4, 1)
	for i := range want {
		v := make([]byte, 200<<10+i)
		for j := range v {
			v[j] = byte(j*31 + j>>7*i) // poorly compressible
		}
		want[i].Value = v
	}
	cfg := saramaConfig(sarama.V2_1_0_0)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	saramaProduceSync(t, w.Addr, cfg, topic, want)
	checkContiguous(t, want)

	ccfg := saramaConfig(sarama.V2_1_0_0)
	ccfg.Consumer.Fetch.Default = 32 << 10
	c, err := sarama.NewConsumer([]string{w.Addr}, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var got []rec
	timer := time.NewTimer(stepTimeout)
	defer timer.Stop()
	for len(got) < len(want) {
		select {
		case m := <-pc.Messages():
			got = append(got, fromSarama(m))
		case err := <-pc.Errors():
			t.Fatalf("sarama consume with 32 KiB fetches: %v", err)
		case <-timer.C:
			t.Fatalf("sarama consume with 32 KiB fetches: %d of %d records within %v", len(got), len(want), stepTimeout)
		}
	}
	compareRecs(t, "sarama (32 KiB fetch)", want, got, nullAware)

	kcl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxBytes(64<<10), kgo.FetchMaxPartitionBytes(16<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()
	kctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	got = got[:0]
	for len(got) < len(want) {
		fs := kcl.PollFetches(kctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("franz-go consume with 16 KiB partition fetches after %d records: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, fromKgo(r)) })
	}
	compareRecs(t, "franz-go (16 KiB fetch)", want, got, nullAware)
}

// TestSaramaLongPollWakesOnProduce: a consumer parked in a Fetch with a
// long max_wait gets a record produced meanwhile promptly, not when the
// wait runs out.
func TestSaramaLongPollWakesOnProduce(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	topic := "sarama-longpoll"
	pcfg := saramaConfig(sarama.V3_6_0_0)
	pcfg.Producer.RequiredAcks = sarama.WaitForLocal
	p, err := sarama.NewSyncProducer([]string{w.Addr}, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("first")}); err != nil {
		t.Fatal(err)
	}

	const maxWait = 15 * time.Second
	ccfg := saramaConfig(sarama.V3_6_0_0)
	ccfg.Consumer.MaxWaitTime = maxWait
	ccfg.Net.ReadTimeout = 2 * maxWait
	c, err := sarama.NewConsumer([]string{w.Addr}, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Closing waits for the parked Fetch: one more record ends it.
		pc.AsyncClose()
		_, _, _ = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("bye")})
	}()
	next := func() (*sarama.ConsumerMessage, time.Time) {
		t.Helper()
		select {
		case m := <-pc.Messages():
			return m, time.Now()
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-time.After(2 * maxWait):
			t.Fatalf("no record within %v", 2*maxWait)
		}
		return nil, time.Time{}
	}
	next() // "first": the consumer is now polling at the end of the log.
	// A record that waited for max_wait would take 0..15 s: all three under
	// 4 s is unlikely (2%) unless the broker answers on arrival.
	var slow int
	for i := range 3 {
		sent := time.Now()
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		m, at := next()
		if string(m.Value) != fmt.Sprint(i) || m.Offset != int64(i+1) {
			t.Fatalf("got %q at offset %d, want %d at %d", m.Value, m.Offset, i, i+1)
		}
		if d := at.Sub(sent); d > 4*time.Second {
			t.Logf("record %d took %v to reach a consumer long-polling with max_wait %v", i, d, maxWait)
			slow++
		}
	}
	if slow > 0 {
		t.Errorf("%d of 3 records waited for the Fetch max_wait: the broker does not answer a parked Fetch when data arrives", slow)
	}
}

// TestSaramaClusterAdminExtras drives the rest of sarama's topic admin:
// CreateTopic error codes, DescribeTopics, CreatePartitions,
// DeleteRecords, AlterConfig (replaces the whole set),
// IncrementalAlterConfig (set and delete) and DescribeCluster.
func TestSaramaClusterAdminExtras(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	requireAPIs(t, w.Addr, 19, 21, 32, 33, 37, 44)
	for _, ver := range saramaVersions {
		t.Run(ver.name, func(t *testing.T) {
			topic := "sarama-admin-x-" + ver.name
			cfg := saramaConfig(ver.v)
			cfg.Metadata.AllowAutoTopicCreation = false
			admin, err := sarama.NewClusterAdmin([]string{w.Addr}, cfg)
			if err != nil {
				t.Fatalf("NewClusterAdmin: %v", err)
			}
			defer admin.Close()
			str := func(s string) *string { return &s }

			// Error codes of CreateTopics.
			for _, c := range []struct {
				name   string
				topic  string
				detail sarama.TopicDetail
				want   sarama.KError
			}{
				{"replication factor 3 on one broker", topic + "-rf", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 3}, sarama.ErrInvalidReplicationFactor},
				{"zero partitions", topic + "-zero", sarama.TopicDetail{NumPartitions: 0, ReplicationFactor: 1}, sarama.ErrInvalidPartitions},
				{"unknown config", topic + "-cfg", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: map[string]*string{"no.such.config": str("1")}}, sarama.ErrInvalidConfig},
				{"bad config value", topic + "-val", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": str("soon")}}, sarama.ErrInvalidConfig},
				{"illegal name", "bad/name", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, sarama.ErrInvalidTopic},
			} {
				if err := admin.CreateTopic(c.topic, &c.detail, false); !errors.Is(err, c.want) {
					t.Errorf("CreateTopic with %s: %v, want %v", c.name, err, c.want)
				}
			}

			if err := admin.CreateTopic(topic, &sarama.TopicDetail{
				NumPartitions: 1, ReplicationFactor: 1,
				ConfigEntries: map[string]*string{"cleanup.policy": str("delete"), "retention.ms": str("7200000")},
			}, false); err != nil {
				t.Fatalf("CreateTopic: %v", err)
			}
			if err := admin.CreatePartitions(topic, 3, nil, true); err != nil {
				t.Errorf("CreatePartitions(3, validateOnly): %v", err)
			}
			if err := admin.CreatePartitions(topic, 3, nil, false); err != nil {
				t.Fatalf("CreatePartitions(3): %v", err)
			}
			if err := admin.CreatePartitions(topic, 2, nil, false); !errors.Is(err, sarama.ErrInvalidPartitions) {
				t.Errorf("CreatePartitions shrinking to 2: %v, want %v", err, sarama.ErrInvalidPartitions)
			}
			md, err := admin.DescribeTopics([]string{topic})
			if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != 3 {
				t.Fatalf("DescribeTopics after CreatePartitions = %+v, %v; want 3 partitions", md, err)
			}

			// Records in the added partition, then DeleteRecords below 4.
			pcfg := saramaConfig(ver.v)
			pcfg.Metadata.AllowAutoTopicCreation = false
			pcfg.Producer.RequiredAcks = sarama.WaitForAll
			want := makeRecs(topic, 10, 1)
			for i := range want {
				want[i].Partition = 2
			}
			saramaProduceSync(t, w.Addr, pcfg, topic, want)
			checkContiguous(t, want)
			if err := admin.DeleteRecords(topic, map[int32]int64{2: 4}); err != nil {
				t.Fatalf("DeleteRecords(2: 4): %v", err)
			}
			cl, err := sarama.NewClient([]string{w.Addr}, pcfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if o, err := cl.GetOffset(topic, 2, sarama.OffsetOldest); err != nil || o != 4 {
				t.Errorf("GetOffset(oldest) after DeleteRecords = %d, %v; want 4", o, err)
			}
			checkTopic(t, "sarama after DeleteRecords", saramaConsumer(ver.v), w.Addr, topic, want[4:], nullAware)

			describe := func() map[string]sarama.ConfigEntry {
				t.Helper()
				res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic}}, sarama.DescribeConfigsOptions{})
				if err != nil || len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError {
					t.Fatalf("DescribeConfigs = %+v, %v", res, err)
				}
				m := map[string]sarama.ConfigEntry{}
				for _, e := range res[0].Configs {
					m[e.Name] = e
				}
				return m
			}
			isDefault := func(e sarama.ConfigEntry) bool {
				return e.Default || e.Source == sarama.SourceDefault || e.Source == sarama.SourceStaticBroker || e.Source == sarama.SourceDynamicDefaultBroker
			}

			// AlterConfigs (legacy) replaces the topic's whole config set.
			if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": str("1234567")}, false); err != nil {
				t.Fatalf("AlterConfig: %v", err)
			}
			cs := describe()
			if e := cs["retention.ms"]; e.Value != "1234567" || isDefault(e) {
				t.Errorf("after AlterConfig: retention.ms = %+v, want 1234567 set on the topic", e)
			}
			if e := cs["cleanup.policy"]; !isDefault(e) {
				t.Errorf("after AlterConfig without cleanup.policy: %+v, want it back to its default (AlterConfigs replaces all topic configs)", e)
			}
			if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"no.such.config": str("1")}, false); !errors.Is(err, sarama.ErrInvalidConfig) {
				t.Errorf("AlterConfig of an unknown config: %v, want %v", err, sarama.ErrInvalidConfig)
			}

			// IncrementalAlterConfigs: set one, delete another (sarama
			// refuses it client-side below Version 2.3).
			if ver.v.IsAtLeast(sarama.V2_3_0_0) {
				if err := admin.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
					"segment.bytes": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: str("1048576")},
					"retention.ms":  {Operation: sarama.IncrementalAlterConfigsOperationDelete},
				}, false); err != nil {
					t.Fatalf("IncrementalAlterConfig: %v", err)
				}
				cs = describe()
				if e := cs["segment.bytes"]; e.Value != "1048576" || isDefault(e) {
					t.Errorf("after IncrementalAlterConfig: segment.bytes = %+v, want 1048576 set on the topic", e)
				}
				if e := cs["retention.ms"]; !isDefault(e) || e.Value == "1234567" {
					t.Errorf("after IncrementalAlterConfig delete: retention.ms = %+v, want the default", e)
				}
			}

			brokers, ctrl, err := admin.DescribeCluster()
			if err != nil || len(brokers) != 1 || brokers[0].Addr() != w.Addr || brokers[0].ID() != ctrl {
				t.Errorf("DescribeCluster = %v, controller %d, %v; want one broker at %s that is the controller", brokers, ctrl, err, w.Addr)
			}
		})
	}
}

// TestSaramaOldProtocolVersions pins sarama to pre-2.1 Config.Versions,
// so it sends older Produce (v3-v5), Fetch (v5-v7, the first with fetch
// sessions), Metadata and ListOffsets versions; zstd needs 2.1, so the
// other codecs only.
func TestSaramaOldProtocolVersions(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "2")
	for _, ver := range []struct {
		name string
		v    sarama.KafkaVersion
	}{
		{"V0_11", sarama.V0_11_0_0},
		{"V1_0", sarama.V1_0_0_0},
		{"V1_1", sarama.V1_1_0_0},
		{"V2_0", sarama.V2_0_0_0},
	} {
		t.Run(ver.name, func(t *testing.T) {
			wants := map[string][]rec{}
			for _, codec := range saramaCodecs[:4] {
				t.Run("produce/"+codec.String(), func(t *testing.T) {
					topic := fmt.Sprintf("sarama-old-%s-%s", ver.name, codec)
					cfg := saramaConfig(ver.v)
					cfg.Producer.RequiredAcks = sarama.WaitForAll
					cfg.Producer.Compression = codec
					want := makeRecs(topic, 20, 2)
					saramaProduceSync(t, w.Addr, cfg, topic, want)
					checkContiguous(t, want)
					wants[topic] = want
				})
			}
			t.Run("consume", func(t *testing.T) {
				checkTopics(t, "sarama", saramaConsumer(ver.v), w.Addr, wants, nullAware)
			})
		})
	}
}
