package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// crossClients are the clients of the cross-client matrix, each with its
// producer (compressing with a different codec) and its consumer.
var crossClients = []struct {
	name string
	// writesNull and readsNull: the producer / consumer tells a null key
	// or value from an empty one (kafka-go's Reader returns nil for both).
	writesNull, readsNull bool
	produce               func(t testing.TB, addr, topic string, rs []rec)
	consume               consumeFn
}{
	{
		name:       "sarama",
		writesNull: true,
		readsNull:  true,
		produce: func(t testing.TB, addr, topic string, rs []rec) {
			cfg := saramaConfig(sarama.V2_1_0_0)
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Compression = sarama.CompressionLZ4
			saramaProduceSync(t, addr, cfg, topic, rs)
		},
		consume: saramaConsumer(sarama.V3_6_0_0),
	},
	{
		name:       "kafka-go",
		writesNull: true,
		readsNull:  false,
		produce: func(t testing.TB, addr, topic string, rs []rec) {
			kafkagoWrite(t, addr, topic, rs, kafkago.RequireAll, kafkago.Zstd, &kafkago.RoundRobin{})
		},
		consume: kafkagoConsume,
	},
	{
		name:       "franz-go",
		writesNull: true,
		readsNull:  true,
		produce: func(t testing.TB, addr, topic string, rs []rec) {
			kgoProduce(t, addr, topic, rs, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
		},
		consume: kgoConsume,
	},
}

// TestCrossClient produces with each of sarama, kafka-go and franz-go and
// consumes what each produced with all three: the same bytes, headers,
// timestamps and offsets must come back whoever wrote and whoever reads.
func TestCrossClient(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "3")
	for _, p := range crossClients {
		t.Run("from-"+p.name, func(t *testing.T) {
			topic := "cross-from-" + p.name
			want := makeRecs(topic, 45, 3)
			p.produce(t, w.Addr, topic, want)
			checkContiguous(t, want)
			for _, c := range crossClients {
				t.Run("to-"+c.name, func(t *testing.T) {
					nulls := nullness(p.writesNull && c.readsNull)
					checkTopic(t, c.name, c.consume, w.Addr, topic, want, nulls)
				})
			}
		})
	}
}

// TestRestartSaramaProduceKafkaGoConsume produces with sarama at acks=all
// in several compressed rounds, crashes the broker with SIGKILL, and reads
// everything back with kafka-go: every acknowledged record survives with
// its offset, and producing after the restart continues the offsets.
func TestRestartSaramaProduceKafkaGoConsume(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "3")
	topic := "restart-sarama-kafkago"
	produce := func(round int, codec sarama.CompressionCodec) []rec {
		cfg := saramaConfig(sarama.V3_6_0_0)
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Compression = codec
		rs := makeRecs(fmt.Sprintf("%s-r%d", topic, round), 20, 3)
		for i := range rs {
			rs[i].Time = rs[i].Time.Add(time.Duration(round) * time.Hour)
		}
		saramaProduceSync(t, w.Addr, cfg, topic, rs)
		return rs
	}
	var want []rec
	for round, codec := range saramaCodecs {
		want = append(want, produce(round, codec)...)
	}
	checkContiguous(t, want)

	w.Restart(true)

	checkEnds := func(what string) {
		t.Helper()
		cl := &kafkago.Client{Addr: kafkago.TCP(w.Addr), Timeout: 10 * time.Second, Transport: newKafkagoTransport(t)}
		c, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		parts := byPartition(want)
		var reqs []kafkago.OffsetRequest
		for p := range parts {
			reqs = append(reqs, kafkago.FirstOffsetOf(int(p)), kafkago.LastOffsetOf(int(p)))
		}
		res, err := cl.ListOffsets(c, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
		if err != nil {
			t.Fatalf("%s: kafka-go ListOffsets: %v", what, err)
		}
		for _, po := range res.Topics[topic] {
			if n := int64(len(parts[int32(po.Partition)])); po.Error != nil || po.FirstOffset != 0 || po.LastOffset != n {
				t.Errorf("%s: partition %d offsets %d..%d (%v), want 0..%d", what, po.Partition, po.FirstOffset, po.LastOffset, po.Error, n)
			}
		}
	}
	checkEnds("after SIGKILL")
	checkTopic(t, "kafka-go after SIGKILL", kafkagoConsume, w.Addr, topic, want, nullIgnored)

	more := produce(len(saramaCodecs), sarama.CompressionGZIP)
	want = append(want, more...)
	checkContiguous(t, want)
	checkEnds("after producing again")
	checkTopic(t, "kafka-go after producing again", kafkagoConsume, w.Addr, topic, want, nullIgnored)
}

// TestConsumeFromMidBatch starts each consumer at an offset inside a
// compressed batch: the broker returns the whole batch and the client
// must drop the records before the offset it asked for.
func TestConsumeFromMidBatch(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	topic := "mid-batch"
	want := makeRecs(topic, 30, 1)
	cfg := saramaConfig(sarama.V2_1_0_0)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = sarama.CompressionZSTD
	saramaProduceSync(t, w.Addr, cfg, topic, want) // one SendMessages: one batch
	checkContiguous(t, want)
	const from = 17
	want = want[from:]

	t.Run("sarama", func(t *testing.T) {
		c, err := sarama.NewConsumer([]string{w.Addr}, saramaConfig(sarama.V3_6_0_0))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pc, err := c.ConsumePartition(topic, 0, from)
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
				t.Fatal(err)
			case <-timer.C:
				t.Fatalf("%d of %d records within %v", len(got), len(want), stepTimeout)
			}
		}
		compareRecs(t, "sarama from 17", want, got, nullAware)
	})
	t.Run("kafka-go", func(t *testing.T) {
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers: []string{w.Addr}, Topic: topic, MaxWait: 500 * time.Millisecond,
			ErrorLogger: newTlog(t, "kafka-go reader: "),
		})
		defer r.Close()
		if err := r.SetOffset(from); err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		var got []rec
		for len(got) < len(want) {
			m, err := r.ReadMessage(c)
			if err != nil {
				t.Fatalf("after %d records: %v", len(got), err)
			}
			got = append(got, fromKafkago(m))
		}
		compareRecs(t, "kafka-go from 17", want, got, nullIgnored)
	})
	t.Run("franz-go", func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		c, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		var got []rec
		for len(got) < len(want) {
			fs := cl.PollFetches(c)
			if err := fs.Err0(); err != nil {
				t.Fatalf("after %d records: %v", len(got), err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, fromKgo(r)) })
		}
		compareRecs(t, "franz-go from 17", want, got, nullAware)
	})
}

// TestLogAppendTime: on a topic with message.timestamp.type=LogAppendTime
// the broker stamps each batch with its own clock, tells the producer (the
// Produce response's log_append_time, which sarama copies into the
// message) and every consumer sees that time instead of the CreateTime
// the producer set.
func TestLogAppendTime(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	requireAPIs(t, w.Addr, 19)
	topic := "log-append-time"
	cfg := saramaConfig(sarama.V2_1_0_0)
	admin, err := sarama.NewClusterAdmin([]string{w.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	lat := "LogAppendTime"
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"message.timestamp.type": &lat}}, false); err != nil {
		t.Fatalf("CreateTopic(message.timestamp.type=LogAppendTime): %v", err)
	}

	before := time.Now().Add(-time.Millisecond)
	want := makeRecs(topic, 20, 2) // CreateTimes in 2020
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = sarama.CompressionSnappy
	p, err := sarama.NewSyncProducer([]string{w.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(want))
	for i, r := range want {
		msgs[i] = saramaMessage(topic, r)
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	after := time.Now().Add(time.Millisecond)
	inRange := func(ts time.Time) bool { return !ts.Before(before) && !ts.After(after) }
	for i, m := range msgs {
		want[i].Offset = m.Offset
		if !inRange(m.Timestamp) {
			t.Errorf("record %d: sarama saw log_append_time %v in the Produce response, want the broker's time in [%v, %v]", i, m.Timestamp.UnixMilli(), before.UnixMilli(), after.UnixMilli())
		}
	}
	checkContiguous(t, want)

	for _, c := range crossClients {
		t.Run(c.name, func(t *testing.T) {
			parts := byPartition(want)
			counts := map[tp]int{}
			for p, g := range parts {
				counts[tp{topic, p}] = len(g)
			}
			got := c.consume(t, w.Addr, counts)
			for p, g := range parts {
				gp := got[tp{topic, p}]
				exp := slices.Clone(g)
				for i := range exp {
					if i < len(gp) && inRange(gp[i].Time) && (i == 0 || !gp[i].Time.Before(gp[i-1].Time)) {
						exp[i].Time = gp[i].Time // the broker's, never going back
					}
				}
				compareRecs(t, fmt.Sprintf("%s %s[%d] (times want [%d, %d])", c.name, topic, p, before.UnixMilli(), after.UnixMilli()), exp, gp, nullIgnored)
			}
		})
	}
}
