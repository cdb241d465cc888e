package broker

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/commitlog"
)

// ConfigSource says where a topic config value comes from (Kafka's
// DescribeConfigs sources).
type ConfigSource int8

// Sources, numbered as Kafka numbers them.
const (
	SourceTopic         ConfigSource = 1 // DYNAMIC_TOPIC_CONFIG
	SourceStaticBroker  ConfigSource = 4 // STATIC_BROKER_CONFIG
	SourceDefaultConfig ConfigSource = 5 // DEFAULT_CONFIG
)

// ConfigEntry is one topic config as DescribeConfigs reports it.
type ConfigEntry struct {
	Name      string
	Value     string
	Source    ConfigSource
	ReadOnly  bool
	Sensitive bool
	Doc       string
	Type      ConfigType
}

// ConfigType is the Kafka config type (for DescribeConfigs v3+).
type ConfigType int8

// Config types, numbered as Kafka numbers them.
const (
	TypeBoolean ConfigType = 1
	TypeString  ConfigType = 2
	TypeInt     ConfigType = 3
	TypeShort   ConfigType = 4
	TypeLong    ConfigType = 5
	TypeDouble  ConfigType = 6
	TypeList    ConfigType = 7
)

type configDef struct {
	name  string
	typ   ConfigType
	doc   string
	check func(string) error
	// def returns the broker-level default.
	def func(o *Options) string
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is outside [%d, %d]", n, lo, hi)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(vals, v) {
			return nil
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

var configDefs = []configDef{
	{"cleanup.policy", TypeList, "delete and/or compact old segments",
		func(v string) error {
			for _, p := range strings.Split(v, ",") {
				if err := oneOf("delete", "compact")(strings.TrimSpace(p)); err != nil {
					return err
				}
			}
			return nil
		}, func(*Options) string { return "delete" }},
	{"retention.ms", TypeLong, "age after which closed segments are deleted; -1 keeps forever",
		intRange(-1, math.MaxInt64), func(o *Options) string { return i64(o.RetentionMs) }},
	{"retention.bytes", TypeLong, "size above which the oldest closed segments are deleted; -1 is unlimited",
		intRange(-1, math.MaxInt64), func(o *Options) string { return i64(o.RetentionBytes) }},
	{"segment.bytes", TypeInt, "segment file size at which the log rolls",
		intRange(14, math.MaxInt32), func(o *Options) string { return i64(o.SegmentBytes) }},
	{"segment.ms", TypeLong, "age at which a non-empty active segment rolls",
		intRange(1, math.MaxInt64), func(*Options) string { return "604800000" }},
	{"max.message.bytes", TypeInt, "largest record batch accepted",
		intRange(0, math.MaxInt32), func(o *Options) string { return i64(int64(o.MaxMessageBytes)) }},
	{"message.timestamp.type", TypeString, "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's",
		oneOf("CreateTime", "LogAppendTime"), func(*Options) string { return "CreateTime" }},
	{"compression.type", TypeString, "codec batches are stored in: producer keeps each as produced, any other value recompresses batches in other codecs",
		oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), func(*Options) string { return "producer" }},
	{"min.insync.replicas", TypeInt, "single node: any value >= 1 is accepted and met by the one replica",
		intRange(1, math.MaxInt32), func(*Options) string { return "1" }},
	{"weir.key.schema.validation", TypeString, "true rejects record keys without the schema id of subject <topic>-key; full also validates the payload",
		oneOfFold("false", "true", "full"), func(*Options) string { return SchemaValidationOff }},
	{"weir.value.schema.validation", TypeString, "true rejects record values without the schema id of subject <topic>-value; full also validates the payload",
		oneOfFold("false", "true", "full"), func(*Options) string { return SchemaValidationOff }},
	{"confluent.key.schema.validation", TypeBoolean, "Confluent's name for weir.key.schema.validation=true (the weir name wins when both are set)",
		oneOfFold("false", "true"), func(*Options) string { return "false" }},
	{"confluent.value.schema.validation", TypeBoolean, "Confluent's name for weir.value.schema.validation=true (the weir name wins when both are set)",
		oneOfFold("false", "true"), func(*Options) string { return "false" }},
}

// compressionCodec maps a compression.type value to the codec batches are
// stored in, -1 for "producer" (and anything unknown: as produced).
func compressionCodec(v string) int32 {
	switch v {
	case "uncompressed":
		return int32(batch.CodecNone)
	case "gzip":
		return int32(batch.CodecGzip)
	case "snappy":
		return int32(batch.CodecSnappy)
	case "lz4":
		return int32(batch.CodecLZ4)
	case "zstd":
		return int32(batch.CodecZstd)
	}
	return -1
}

func findDef(name string) *configDef {
	for i := range configDefs {
		if configDefs[i].name == name {
			return &configDefs[i]
		}
	}
	return nil
}

// ValidateConfig checks one topic config name and value.
func ValidateConfig(name, value string) error {
	d := findDef(name)
	if d == nil {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, name)
	}
	if err := d.check(value); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, name, err)
	}
	return nil
}

// describeConfigs lists every known config for a topic with its source.
func (b *Broker) describeConfigs(set map[string]string) []ConfigEntry {
	out := make([]ConfigEntry, 0, len(configDefs))
	for _, d := range configDefs {
		e := ConfigEntry{Name: d.name, Type: d.typ, Doc: d.doc, Source: SourceDefaultConfig, Value: d.def(&b.opts)}
		if v, ok := set[d.name]; ok {
			e.Value, e.Source = v, SourceTopic
		}
		out = append(out, e)
	}
	return out
}

// effective returns the value in force for name.
func (b *Broker) effective(set map[string]string, name string) string {
	if v, ok := set[name]; ok {
		return v
	}
	return findDef(name).def(&b.opts)
}

func (b *Broker) effectiveInt(set map[string]string, name string) int64 {
	n, _ := strconv.ParseInt(b.effective(set, name), 10, 64)
	return n
}

// limits projects a topic's configs onto the log's changeable settings.
func (b *Broker) limits(set map[string]string) commitlog.Limits {
	seg := b.effectiveInt(set, "segment.bytes")
	if seg < 1024 {
		seg = 1024 // the log needs room for at least a header and a record
	}
	lim := commitlog.Limits{
		SegmentBytes:   seg,
		SegmentMs:      b.effectiveInt(set, "segment.ms"),
		RetentionMs:    b.effectiveInt(set, "retention.ms"),
		RetentionBytes: b.effectiveInt(set, "retention.bytes"),
		LogAppendTime:  b.effective(set, "message.timestamp.type") == "LogAppendTime",
	}
	return lim
}

// DefaultPartitions is the partition count of topics created with -1
// partitions (Kafka's num.partitions).
func (b *Broker) DefaultPartitions() int32 { return b.opts.DefaultPartitions }

// ConfigEntries lists every config of t with its value and source, as
// DescribeConfigs does. t may be the unregistered topic a validate-only
// CreateTopic returns, so a dry run can report the configs it would set.
func (b *Broker) ConfigEntries(t *Topic) []ConfigEntry { return b.describeConfigs(t.Configs()) }

// brokerSynonyms names the broker-level setting (Kafka's server.properties
// name) whose value is each topic config's default.
var brokerSynonyms = map[string]string{
	"cleanup.policy":         "log.cleanup.policy",
	"retention.ms":           "log.retention.ms",
	"retention.bytes":        "log.retention.bytes",
	"segment.bytes":          "log.segment.bytes",
	"segment.ms":             "log.roll.ms",
	"max.message.bytes":      "message.max.bytes",
	"message.timestamp.type": "log.message.timestamp.type",
	"compression.type":       "compression.type",
	"min.insync.replicas":    "min.insync.replicas",
}

// StaticConfigs lists the node's broker-level settings under Kafka's names,
// sorted by name. They are read-only and come from the static configuration:
// Weir changes no broker config at run time.
func (b *Broker) StaticConfigs() []ConfigEntry {
	static := func(name, value, doc string, typ ConfigType) ConfigEntry {
		return ConfigEntry{Name: name, Value: value, Source: SourceStaticBroker, ReadOnly: true, Doc: doc, Type: typ}
	}
	out := []ConfigEntry{
		static("num.partitions", strconv.Itoa(int(b.opts.DefaultPartitions)), "partitions of topics created without a count", TypeInt),
		static("auto.create.topics.enable", strconv.FormatBool(b.opts.AutoCreateTopics), "create unknown topics when clients ask for them", TypeBoolean),
		static("default.replication.factor", "1", "a single node holds one replica of every partition", TypeInt),
	}
	for _, d := range configDefs {
		if name, ok := brokerSynonyms[d.name]; ok {
			out = append(out, static(name, d.def(&b.opts), d.doc, d.typ))
		}
	}
	slices.SortFunc(out, func(x, y ConfigEntry) int { return strings.Compare(x.Name, y.Name) })
	return out
}
