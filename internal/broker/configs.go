package broker

import (
	"fmt"
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
	// Synonyms are the settings the value is drawn from, highest priority
	// first, as Kafka lists them: the topic's own setting when it has one,
	// then the broker-level setting its default comes from (none for
	// configs Kafka gives no broker-level name).
	Synonyms []ConfigSynonym
	// Honoured is false for configs Weir validates, stores and reports but
	// does not act on (yet); Doc then says why.
	Honoured bool
}

// ConfigSynonym is one setting a config value may come from.
type ConfigSynonym struct {
	Name   string
	Value  string
	Source ConfigSource
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

// configDef is one topic config Weir knows (configs_table.go lists them).
type configDef struct {
	name string
	typ  ConfigType
	doc  string
	// check validates a value as Kafka's LogConfig does.
	check func(string) error
	// def returns the broker-level default.
	def func(o *Options) string
	// synonym is the broker-level (server.properties) name the default
	// comes from, as Kafka's ServerTopicConfigSynonyms names it; empty
	// when Kafka has none.
	synonym string
	// unused, when not empty, says why Weir stores the config but does
	// not act on it; empty means Weir honours it.
	unused string
}

// describe is the documentation DescribeConfigs reports.
func (d *configDef) describe() string {
	if d.unused == "" {
		return d.doc
	}
	return d.doc + " (stored only, no effect on Weir: " + d.unused + ")"
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// fixed is a default that no broker option changes.
func fixed(v string) func(*Options) string { return func(*Options) string { return v } }

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
	for i := range configDefs {
		d := &configDefs[i]
		def := d.def(&b.opts)
		e := ConfigEntry{Name: d.name, Type: d.typ, Doc: d.describe(), Source: SourceDefaultConfig, Value: def, Honoured: d.unused == ""}
		if v, ok := set[d.name]; ok {
			e.Value, e.Source = v, SourceTopic
			e.Synonyms = append(e.Synonyms, ConfigSynonym{Name: d.name, Value: v, Source: SourceTopic})
		}
		if d.synonym != "" {
			e.Synonyms = append(e.Synonyms, ConfigSynonym{Name: d.synonym, Value: def, Source: SourceDefaultConfig})
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
	n, _ := strconv.ParseInt(strings.TrimSpace(b.effective(set, name)), 10, 64)
	return n
}

// limits projects a topic's configs onto the log's changeable settings.
func (b *Broker) limits(set map[string]string) commitlog.Limits {
	seg := b.effectiveInt(set, "segment.bytes")
	if seg < 1024 {
		seg = 1024 // the log needs room for at least a header and a record
	}
	retention := b.effectiveInt(set, "retention.ms")
	if retention == 0 {
		// The log reads 0 as "unchanged" or "default"; 1 ms expires every
		// closed segment just as Kafka's 0 does.
		retention = 1
	}
	lim := commitlog.Limits{
		SegmentBytes:   seg,
		SegmentMs:      b.effectiveInt(set, "segment.ms"),
		RetentionMs:    retention,
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

// StaticConfigs lists the node's broker-level settings under Kafka's names,
// sorted by name. They are read-only and come from the static configuration:
// Weir changes no broker config at run time. Each topic config with a
// broker-level synonym is there, with the default topics get.
func (b *Broker) StaticConfigs() []ConfigEntry {
	static := func(name, value, doc string, typ ConfigType, honoured bool) ConfigEntry {
		return ConfigEntry{Name: name, Value: value, Source: SourceStaticBroker, ReadOnly: true, Doc: doc, Type: typ,
			Synonyms: []ConfigSynonym{{Name: name, Value: value, Source: SourceStaticBroker}}, Honoured: honoured}
	}
	out := []ConfigEntry{
		static("num.partitions", strconv.Itoa(int(b.opts.DefaultPartitions)), "partitions of topics created without a count", TypeInt, true),
		static("auto.create.topics.enable", strconv.FormatBool(b.opts.AutoCreateTopics), "create unknown topics when clients ask for them", TypeBoolean, true),
		static("default.replication.factor", "1", "a single node holds one replica of every partition", TypeInt, true),
		static("log.retention.check.interval.ms", strconv.FormatInt(b.opts.RetentionCheckInterval.Milliseconds(), 10),
			"how often segments past segment.ms are rolled and those past retention deleted", TypeLong, true),
		static("log.cleaner.backoff.ms", strconv.FormatInt(b.opts.CleanerBackoff.Milliseconds(), 10),
			"how often the cleaner looks for work", TypeLong, true),
	}
	for i := range configDefs {
		if d := &configDefs[i]; d.synonym != "" {
			out = append(out, static(d.synonym, d.def(&b.opts), d.describe(), d.typ, d.unused == ""))
		}
	}
	slices.SortFunc(out, func(x, y ConfigEntry) int { return strings.Compare(x.Name, y.Name) })
	return out
}
