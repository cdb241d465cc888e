package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// configOf returns the named config of the one resource in rcs.
func configOf(t *testing.T, rcs kadm.ResourceConfigs, name string) kadm.Config {
	t.Helper()
	if len(rcs) != 1 {
		t.Fatalf("%d resources, want 1", len(rcs))
	}
	if rcs[0].Err != nil {
		t.Fatalf("resource %s: %v (%s)", rcs[0].Name, rcs[0].Err, rcs[0].ErrMessage)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == name {
			return c
		}
	}
	t.Fatalf("resource %s has no config %s", rcs[0].Name, name)
	return kadm.Config{}
}

func wantConfig(t *testing.T, c kadm.Config, value string, source kmsg.ConfigSource) {
	t.Helper()
	if c.MaybeValue() != value || c.Source != source {
		t.Errorf("%s = %q (%v), want %q (%v)", c.Key, c.MaybeValue(), c.Source, value, source)
	}
	// Kafka lists the value's own setting first: the topic's or the
	// broker's when set, else the broker-level default.
	own := source != kmsg.ConfigSourceDefaultConfig
	if len(c.Synonyms) == 0 || (c.Synonyms[0].Key == c.Key) != own || c.Synonyms[0].Source != source ||
		c.Synonyms[0].Value == nil || *c.Synonyms[0].Value != value {
		t.Errorf("%s synonyms %+v, want first its own setting (%v) with value %q", c.Key, c.Synonyms, own, value)
	}
}

// TestKadmAdmin drives the admin APIs end to end with franz-go's kadm.
func TestKadmAdmin(t *testing.T) {
	ts := startServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const topic = "kadm-topic"

	// Create, with configs; a dry run first.
	configs := map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "retention.ms": kadm.StringPtr("3600000")}
	dry, err := adm.ValidateCreateTopics(ctx, 3, 1, configs, topic)
	if err != nil || dry.Error() != nil {
		t.Fatalf("ValidateCreateTopics: %v / %v", err, dry.Error())
	}
	if _, err := ts.opts.Broker.Topic(topic); err == nil {
		t.Fatal("ValidateCreateTopics created the topic")
	}
	created, err := adm.CreateTopic(ctx, 2, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopic: %v (%s)", err, created.ErrMessage)
	}
	if created.NumPartitions != 2 || created.ReplicationFactor != 1 || created.ID == (kadm.TopicID{}) {
		t.Errorf("created = %+v, want 2 partitions, rf 1, an id", created)
	}
	if c := created.Configs["cleanup.policy"]; c.MaybeValue() != "compact" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("created cleanup.policy = %q (%v)", c.MaybeValue(), c.Source)
	}
	again, err := adm.CreateTopic(ctx, 2, 1, nil, topic)
	if !errors.Is(err, kerr.TopicAlreadyExists) || again.ErrMessage == "" {
		t.Errorf("second CreateTopic: %v (%q), want TOPIC_ALREADY_EXISTS with a message", err, again.ErrMessage)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "rf3"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Errorf("CreateTopic rf 3: %v, want INVALID_REPLICATION_FACTOR", err)
	}

	// List.
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	td, ok := topics[topic]
	if !ok || len(td.Partitions) != 2 || td.ID != created.ID {
		t.Fatalf("ListTopics: %+v (present %v), want 2 partitions and id %v", td, ok, created.ID)
	}

	// Describe: Kafka Connect's cleanup.policy check.
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	wantConfig(t, configOf(t, rcs, "cleanup.policy"), "compact", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, configOf(t, rcs, "retention.ms"), "3600000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, configOf(t, rcs, "segment.bytes"), "1073741824", kmsg.ConfigSourceDefaultConfig)
	missing, err := adm.DescribeTopicConfigs(ctx, "no-such-topic")
	if err != nil || len(missing) != 1 || !errors.Is(missing[0].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("DescribeTopicConfigs(missing) = %+v, %v; want UNKNOWN_TOPIC_OR_PARTITION", missing, err)
	}
	brk, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantConfig(t, configOf(t, brk, "log.retention.ms"), "604800000", kmsg.ConfigSourceStaticBrokerConfig)
	wantConfig(t, configOf(t, brk, "num.partitions"), "1", kmsg.ConfigSourceStaticBrokerConfig)
	dyn, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(dyn) != 1 || dyn[0].Err != nil || len(dyn[0].Configs) != 0 {
		t.Errorf("DescribeBrokerConfigs() = %+v, %v; want no cluster-wide dynamic configs", dyn, err)
	}

	// Alter incrementally, then the legacy whole-set way.
	alts, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, topic)
	if err != nil || len(alts) != 1 || alts[0].Err != nil {
		t.Fatalf("AlterTopicConfigs: %+v, %v", alts, err)
	}
	rcs, err = adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	wantConfig(t, configOf(t, rcs, "cleanup.policy"), "delete", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, configOf(t, rcs, "retention.ms"), "604800000", kmsg.ConfigSourceDefaultConfig)
	alts, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("never")}}, topic)
	if err != nil || len(alts) != 1 || !errors.Is(alts[0].Err, kerr.InvalidConfig) || alts[0].ErrMessage == "" {
		t.Errorf("AlterTopicConfigs(bad value) = %+v, %v; want INVALID_CONFIG with a message", alts, err)
	}
	alts, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kadm.StringPtr("60000")}}, topic)
	if err != nil || len(alts) != 1 || alts[0].Err != nil {
		t.Fatalf("AlterTopicConfigsState: %+v, %v", alts, err)
	}
	rcs, err = adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	wantConfig(t, configOf(t, rcs, "segment.ms"), "60000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, configOf(t, rcs, "cleanup.policy"), "delete", kmsg.ConfigSourceDefaultConfig)
	if alts, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kadm.StringPtr("1")}}, 0); err != nil ||
		len(alts) != 1 || !errors.Is(alts[0].Err, kerr.InvalidRequest) {
		t.Errorf("AlterBrokerConfigs = %+v, %v; want INVALID_REQUEST", alts, err)
	}

	// Grow the topic.
	cps, err := adm.CreatePartitions(ctx, 2, topic)
	if err != nil || cps.Error() != nil {
		t.Fatalf("CreatePartitions: %v / %v", err, cps.Error())
	}
	if cps, err := adm.UpdatePartitions(ctx, 3, topic); err != nil || !errors.Is(cps.Error(), kerr.InvalidPartitions) {
		t.Errorf("UpdatePartitions(3) on 4 partitions: %v / %v, want INVALID_PARTITIONS", err, cps.Error())
	}
	topics, err = adm.ListTopics(ctx, topic)
	if err != nil || len(topics[topic].Partitions) != 4 {
		t.Fatalf("after CreatePartitions: %+v, %v; want 4 partitions", topics[topic], err)
	}

	// Delete records below offset 3 of partition 0.
	produceN(t, ts.addr, topic, 0, 5)
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 3})
	drs, err := adm.DeleteRecords(ctx, os)
	if err != nil || drs.Error() != nil {
		t.Fatalf("DeleteRecords: %v / %v", err, drs.Error())
	}
	if dr, _ := drs.On(topic, 0, nil); dr.LowWatermark != 3 {
		t.Errorf("DeleteRecords low watermark %d, want 3", dr.LowWatermark)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if lo, _ := starts.Lookup(topic, 0); lo.Offset != 3 {
		t.Errorf("start offset after DeleteRecords = %d, want 3", lo.Offset)
	}

	// Cluster: Metadata through kadm, DescribeCluster through kgo.
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Cluster != ts.opts.Broker.ClusterID() || meta.Controller != 0 || len(meta.Brokers) != 1 {
		t.Errorf("BrokerMetadata = cluster %q controller %d brokers %v", meta.Cluster, meta.Controller, meta.Brokers)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dc.ErrorCode != 0 || dc.ClusterID != meta.Cluster || dc.ControllerID != 0 || len(dc.Brokers) != 1 ||
		dc.Brokers[0].Host != meta.Brokers[0].Host || dc.Brokers[0].Port != meta.Brokers[0].Port {
		t.Errorf("DescribeCluster v%d = %+v, want it to match Metadata %+v", dc.Version, dc, meta.Brokers)
	}

	// Delete.
	dts, err := adm.DeleteTopics(ctx, topic, "no-such-topic")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dts.On(topic, nil); r.Err != nil {
		t.Errorf("DeleteTopics(%s): %v", topic, r.Err)
	}
	if r, _ := dts.On("no-such-topic", nil); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("DeleteTopics(missing): %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
	}
	// kadm's ListTopics answers from kgo's metadata cache for a few
	// seconds, as it would against Kafka: ask the broker directly.
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range md.Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			t.Errorf("%s still in Metadata after DeleteTopics", topic)
		}
	}
}

// TestAutoCreateAfterListOffsetsOfMissingTopic: an admin client asks for
// the end offsets of a topic that does not exist yet, then producers
// (plain and transactional) with auto-creation write to it. Every
// acknowledged record is in the topic: a broker that asked nothing of
// ListOffsets keeps no trace of the miss. The admin client that asked
// first still reports the topic missing until its cached metadata ages
// out (kgo's MetadataMinAge, 5 s: kadm answers from the client's metadata
// cache), so a test must ask through a fresh client; that stale answer,
// not lost records, is what an "empty output" seen right after such a
// miss is.
func TestAutoCreateAfterListOffsetsOfMissingTopic(t *testing.T) {
	ts := startTxnServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	asked, err := kgo.NewClient(kgo.SeedBrokers(ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer asked.Close()
	for _, txn := range []bool{false, true} {
		topic := "missing-plain"
		opts := []kgo.Opt{kgo.SeedBrokers(ts.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic)}
		if txn {
			topic = "missing-txn"
			opts = append(opts, kgo.DefaultProduceTopic(topic), kgo.TransactionalID("missing-txn"))
		}
		ends, err := kadm.NewClient(asked).ListEndOffsets(ctx, topic)
		if err != nil || !errors.Is(ends.Error(), kerr.UnknownTopicOrPartition) {
			t.Fatalf("%s before: %v %v, want unknown topic", topic, err, ends.Error())
		}
		p, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		if txn {
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
		}
		recs := []*kgo.Record{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", topic, err)
		}
		if txn {
			if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
		p.Close()

		fresh, err := kgo.NewClient(kgo.SeedBrokers(ts.addr))
		if err != nil {
			t.Fatal(err)
		}
		ends, err = kadm.NewClient(fresh).ListEndOffsets(ctx, topic)
		fresh.Close()
		want := int64(len(recs))
		if txn {
			want++ // the commit marker
		}
		if e, ok := ends.Lookup(topic, 0); err != nil || ends.Error() != nil || !ok || e.Offset != want {
			t.Fatalf("%s after: %+v %v %v, want end offset %d", topic, e, err, ends.Error(), want)
		}
		if stale, err := kadm.NewClient(asked).ListEndOffsets(ctx, topic); err != nil || !errors.Is(stale.Error(), kerr.UnknownTopicOrPartition) {
			t.Logf("%s: the asking client's cache no longer says missing (%v %v): kgo's metadata caching changed", topic, err, stale.Error())
		}
	}
}
