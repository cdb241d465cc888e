package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaTopicConfigs is every topic config Weir knows, with Kafka's type and
// default (Kafka 3.9's where 4.x differs), a value Kafka accepts other than
// the default and one it refuses. It is written out here, not derived from
// the broker's table, so that a wrong default or rule in either shows.
var kafkaTopicConfigs = []struct {
	name, def, valid, invalid string
	typ                       kmsg.ConfigType
}{
	{"cleanup.policy", "delete", "compact,delete", "archive", kmsg.ConfigTypeList},
	{"compression.gzip.level", "-1", "9", "10", kmsg.ConfigTypeInt},
	{"compression.lz4.level", "9", "17", "0", kmsg.ConfigTypeInt},
	{"compression.type", "producer", "zstd", "brotli", kmsg.ConfigTypeString},
	{"compression.zstd.level", "3", "-5", "23", kmsg.ConfigTypeInt},
	{"confluent.key.schema.validation", "false", "true", "maybe", kmsg.ConfigTypeBoolean},
	{"confluent.value.schema.validation", "false", "true", "maybe", kmsg.ConfigTypeBoolean},
	{"delete.retention.ms", "86400000", "3600000", "-1", kmsg.ConfigTypeLong},
	{"file.delete.delay.ms", "60000", "0", "-1", kmsg.ConfigTypeLong},
	{"flush.messages", "9223372036854775807", "1", "0", kmsg.ConfigTypeLong},
	{"flush.ms", "9223372036854775807", "1000", "-1", kmsg.ConfigTypeLong},
	{"follower.replication.throttled.replicas", "", "0:0,1:0", "0-0", kmsg.ConfigTypeList},
	{"index.interval.bytes", "4096", "8192", "-1", kmsg.ConfigTypeInt},
	{"leader.replication.throttled.replicas", "", "*", "everything", kmsg.ConfigTypeList},
	{"local.retention.bytes", "-2", "1048576", "-3", kmsg.ConfigTypeLong},
	{"local.retention.ms", "-2", "3600000", "-3", kmsg.ConfigTypeLong},
	{"max.compaction.lag.ms", "9223372036854775807", "86400000", "0", kmsg.ConfigTypeLong},
	{"max.message.bytes", "1048588", "2097152", "-1", kmsg.ConfigTypeInt},
	{"message.downconversion.enable", "true", "false", "no", kmsg.ConfigTypeBoolean},
	{"message.format.version", "3.0-IV1", "2.8", "9.9", kmsg.ConfigTypeString},
	{"message.timestamp.after.max.ms", "9223372036854775807", "3600000", "-1", kmsg.ConfigTypeLong},
	{"message.timestamp.before.max.ms", "9223372036854775807", "86400000", "-1", kmsg.ConfigTypeLong},
	{"message.timestamp.difference.max.ms", "9223372036854775807", "86400000", "-1", kmsg.ConfigTypeLong},
	{"message.timestamp.type", "CreateTime", "LogAppendTime", "AppendTime", kmsg.ConfigTypeString},
	{"min.cleanable.dirty.ratio", "0.5", "0.1", "1.5", kmsg.ConfigTypeDouble},
	{"min.compaction.lag.ms", "0", "60000", "-1", kmsg.ConfigTypeLong},
	{"min.insync.replicas", "1", "2", "0", kmsg.ConfigTypeInt},
	{"preallocate", "false", "true", "sometimes", kmsg.ConfigTypeBoolean},
	{"remote.log.copy.disable", "false", "true", "off", kmsg.ConfigTypeBoolean},
	{"remote.log.delete.on.disable", "false", "true", "off", kmsg.ConfigTypeBoolean},
	{"remote.storage.enable", "false", "true", "on", kmsg.ConfigTypeBoolean},
	{"retention.bytes", "-1", "1073741824", "1GB", kmsg.ConfigTypeLong},
	{"retention.ms", "604800000", "-1", "-2", kmsg.ConfigTypeLong},
	{"segment.bytes", "1073741824", "1048576", "13", kmsg.ConfigTypeInt},
	{"segment.index.bytes", "10485760", "4096", "3", kmsg.ConfigTypeInt},
	{"segment.jitter.ms", "0", "60000", "-1", kmsg.ConfigTypeLong},
	{"segment.ms", "604800000", "3600000", "0", kmsg.ConfigTypeLong},
	{"unclean.leader.election.enable", "false", "true", "yes", kmsg.ConfigTypeBoolean},
	{"weir.key.schema.validation", "false", "full", "strict", kmsg.ConfigTypeString},
	{"weir.value.schema.validation", "false", "true", "strict", kmsg.ConfigTypeString},
}

// TestEveryTopicConfig checks each topic config through the wire: its
// default as DescribeConfigs reports it, a valid value accepted by
// CreateTopics, AlterConfigs and IncrementalAlterConfigs and reported
// back, and an invalid one refused by each with INVALID_CONFIG naming it.
func TestEveryTopicConfig(t *testing.T) {
	ts := startServer(t, Options{})
	cl := dial(t, ts.addr)
	topic := kmsg.ConfigResourceTypeTopic
	describe := func(name string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version, req.IncludeSynonyms, req.IncludeDocumentation = 4, true, true
		req.Resources = []kmsg.DescribeConfigsRequestResource{describeResource(topic, name)}
		r := cl.roundTrip(req).(*kmsg.DescribeConfigsResponse).Resources[0]
		if r.ErrorCode != 0 {
			t.Fatalf("describe %s: error %d", name, r.ErrorCode)
		}
		return describedByName(r.Configs)
	}
	create := func(name string, configs ...string) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		req.Topics = []kmsg.CreateTopicsRequestTopic{createTopicReq(name, 1, 1, configs...)}
		return cl.roundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0]
	}
	alter := func(name, config, value string) kmsg.AlterConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Version = 2
		req.Resources = []kmsg.AlterConfigsRequestResource{alterResource(topic, name, &config, &value)}
		return cl.roundTrip(req).(*kmsg.AlterConfigsResponse).Resources[0]
	}
	incAlter := func(name, config, value string) kmsg.IncrementalAlterConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Version = 1
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
			incResource(topic, name, incOp(kmsg.IncrementalAlterConfigOpSet, config, &value))}
		return cl.roundTrip(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
	}
	reported := func(what string, got map[string]kmsg.DescribeConfigsResponseResourceConfig, name, value string, src kmsg.ConfigSource) {
		t.Helper()
		if c, ok := got[name]; !ok || c.Value == nil || *c.Value != value || c.Source != src {
			t.Errorf("%s: %s = %+v (present %v), want %q from %v", what, name, c, ok, value, src)
		}
	}

	if r := create("defaults"); r.ErrorCode != 0 {
		t.Fatalf("create defaults: %d", r.ErrorCode)
	}
	defaults := describe("defaults")
	if len(defaults) != len(kafkaTopicConfigs) {
		t.Errorf("DescribeConfigs lists %d topic configs; the table here has %d", len(defaults), len(kafkaTopicConfigs))
	}
	for i, c := range kafkaTopicConfigs {
		if c.valid == c.def || c.valid == c.invalid {
			t.Fatalf("%s: the table's valid value must differ from the default and the invalid one", c.name)
		}
		d := defaults[c.name]
		reported("default", defaults, c.name, c.def, kmsg.ConfigSourceDefaultConfig)
		if d.ConfigType != c.typ || d.ReadOnly || d.IsSensitive || d.Documentation == nil || *d.Documentation == "" {
			t.Errorf("%s: type %v read-only %v sensitive %v doc %v; want type %v, writable, documented",
				c.name, d.ConfigType, d.ReadOnly, d.IsSensitive, d.Documentation, c.typ)
		}

		// CreateTopics: accepted and reported, in the response and after.
		name := fmt.Sprintf("cfg-%d", i)
		r := create(name, c.name, c.valid)
		if c.name == "remote.storage.enable" {
			// This node has no tiered storage (internal/server's tiered
			// tests create and alter such topics on one that has).
			wantError(t, "create "+c.name+"="+c.valid+" without tiered storage", r.ErrorCode, r.ErrorMessage, kerr.InvalidConfig.Code, true, "--archive")
			continue
		}
		wantError(t, "create "+c.name+"="+c.valid, r.ErrorCode, r.ErrorMessage, 0, true, "")
		for _, rc := range r.Configs {
			if rc.Name == c.name && (rc.Value == nil || *rc.Value != c.valid || rc.Source != int8(kmsg.ConfigSourceDynamicTopicConfig)) {
				t.Errorf("create %s: response reports %+v", c.name, rc)
			}
		}
		reported("after create", describe(name), c.name, c.valid, kmsg.ConfigSourceDynamicTopicConfig)
		r = create(name+"-bad", c.name, c.invalid)
		wantError(t, "create "+c.name+"="+c.invalid, r.ErrorCode, r.ErrorMessage, kerr.InvalidConfig.Code, true, c.name)

		// AlterConfigs, then IncrementalAlterConfigs back to the default.
		name = fmt.Sprintf("alt-%d", i)
		if r := create(name); r.ErrorCode != 0 {
			t.Fatalf("create %s: %d", name, r.ErrorCode)
		}
		a := alter(name, c.name, c.valid)
		wantError(t, "alter "+c.name+"="+c.valid, a.ErrorCode, a.ErrorMessage, 0, true, "")
		reported("after alter", describe(name), c.name, c.valid, kmsg.ConfigSourceDynamicTopicConfig)
		a = alter(name, c.name, c.invalid)
		wantError(t, "alter "+c.name+"="+c.invalid, a.ErrorCode, a.ErrorMessage, kerr.InvalidConfig.Code, true, c.name)
		ia := incAlter(name, c.name, c.invalid)
		wantError(t, "incremental alter "+c.name+"="+c.invalid, ia.ErrorCode, ia.ErrorMessage, kerr.InvalidConfig.Code, true, c.name)
		reported("after refused alters", describe(name), c.name, c.valid, kmsg.ConfigSourceDynamicTopicConfig)
		ia = incAlter(name, c.name, c.def)
		wantError(t, "incremental alter "+c.name+"="+c.def, ia.ErrorCode, ia.ErrorMessage, 0, true, "")
		reported("after incremental alter", describe(name), c.name, c.def, kmsg.ConfigSourceDynamicTopicConfig)
	}

	// A name Kafka does not know either stays INVALID_CONFIG.
	r := create("unknown", "no.such.config", "1")
	wantError(t, "unknown config", r.ErrorCode, r.ErrorMessage, kerr.InvalidConfig.Code, true, `unknown topic config "no.such.config"`)
	a := alter("defaults", "no.such.config", "1")
	wantError(t, "alter unknown config", a.ErrorCode, a.ErrorMessage, kerr.InvalidConfig.Code, true, "no.such.config")
}

// TestConnectStyleTopicConfigs creates a topic the way Kafka Connect and
// Debezium do, with configs Weir stores or honours beyond retention, and
// checks a record outside the timestamp bound is refused.
func TestConnectStyleTopicConfigs(t *testing.T) {
	ts := startServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.RecordRetries(0), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const topic = "dbserver1.inventory.customers"
	configs := map[string]*string{
		"cleanup.policy":                      kadm.StringPtr("compact"),
		"message.timestamp.difference.max.ms": kadm.StringPtr("3600000"),
		"unclean.leader.election.enable":      kadm.StringPtr("false"),
		"min.insync.replicas":                 kadm.StringPtr("1"),
		"compression.type":                    kadm.StringPtr("lz4"),
	}
	created, err := adm.CreateTopic(ctx, 1, -1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopic: %v (%s)", err, created.ErrMessage)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range configs {
		wantConfig(t, configOf(t, rcs, name), *v, kmsg.ConfigSourceDynamicTopicConfig)
	}
	if c := configOf(t, rcs, "unclean.leader.election.enable"); len(c.Synonyms) != 2 ||
		c.Synonyms[1].Key != "unclean.leader.election.enable" || c.Synonyms[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("unclean.leader.election.enable synonyms %+v, want the topic's, then the broker default", c.Synonyms)
	}
	if c := configOf(t, rcs, "message.timestamp.before.max.ms"); c.MaybeValue() != "9223372036854775807" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("message.timestamp.before.max.ms = %q (%v), want Kafka's default", c.MaybeValue(), c.Source)
	}

	// An unknown value of a known config is still refused.
	bad, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"unclean.leader.election.enable": kadm.StringPtr("sometimes")}, "bad")
	if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(bad.ErrMessage, "unclean.leader.election.enable") {
		t.Errorf("CreateTopic(bad value) = %v (%q), want INVALID_CONFIG naming the config", err, bad.ErrMessage)
	}

	// The deprecated bound is honoured: two hours back is refused, now is not.
	now := time.Now()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("now"), Timestamp: now}).FirstErr(); err != nil {
		t.Fatalf("produce now: %v", err)
	}
	old := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("old"), Timestamp: now.Add(-2 * time.Hour)}
	if err := cl.ProduceSync(ctx, old).FirstErr(); !errors.Is(err, kerr.InvalidTimestamp) {
		t.Errorf("produce two hours back: %v, want INVALID_TIMESTAMP", err)
	}
}
