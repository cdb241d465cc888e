package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
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
// level and compression codec, then reads each partition back with
// sarama's partition consumer and compares keys, values, headers,
// timestamps and offsets byte for byte.
func TestSaramaProduceConsume(t *testing.T) {
	w := StartWeir(t, "", "--default-partitions", "3")
	for _, ver := range saramaVersions {
		t.Run(ver.name, func(t *testing.T) {
			for _, acks := range saramaAcks {
				for _, codec := range saramaCodecs {
					t.Run(fmt.Sprintf("acks=%s/%s", acks.name, codec), func(t *testing.T) {
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
						checkTopic(t, "sarama", saramaConsumer(ver.v), w.Addr, topic, want, nullAware)
					})
				}
			}
		})
	}
}

// TestSaramaIdempotentProducer produces in several rounds with
// Producer.Idempotent (InitProducerId, then sequence numbers per
// partition) and checks every record landed exactly once, in order.
func TestSaramaIdempotentProducer(t *testing.T) {
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
			})
		}
	}
}

// TestSaramaClusterAdmin drives sarama's ClusterAdmin: CreateTopic with
// configs, ListTopics, DescribeConfig, DeleteTopic. It skips until the
// broker advertises CreateTopics, DeleteTopics and DescribeConfigs.
func TestSaramaClusterAdmin(t *testing.T) {
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
				t.Fatalf("ListTopics: %s missing from %v", topic, keys(topics))
			}
			if d.NumPartitions != 3 {
				t.Errorf("ListTopics: %s has %d partitions, want 3", topic, d.NumPartitions)
			}
			if v := d.ConfigEntries["retention.ms"]; v == nil || *v != retention {
				t.Errorf("ListTopics: retention.ms = %v, want %s", deref(v), retention)
			}

			entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
			if err != nil {
				t.Fatalf("DescribeConfig: %v", err)
			}
			got := map[string]sarama.ConfigEntry{}
			for _, e := range entries {
				got[e.Name] = e
			}
			for name, want := range map[string]string{"retention.ms": retention, "cleanup.policy": cleanup} {
				e, ok := got[name]
				switch {
				case !ok:
					t.Errorf("DescribeConfig: %s missing", name)
				case e.Value != want:
					t.Errorf("DescribeConfig: %s = %q, want %q", name, e.Value, want)
				case e.Default:
					t.Errorf("DescribeConfig: %s set at creation but reported as default", name)
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

func keys[V any](m map[string]V) string {
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
