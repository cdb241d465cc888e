// Package config holds Weir's configuration as a plain struct with
// documented defaults and validation. Only cmd/weir reads flags, environment
// and files into it; the server projects it into per-package Options.
package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// Durability names the fsync policy of the partition logs.
type Durability string

// Durability policies.
const (
	// DurabilityAlways acknowledges acks=all produces only after fdatasync,
	// sharing one fdatasync among concurrent appends (group commit).
	DurabilityAlways Durability = "always"
	// DurabilityInterval fdatasyncs every SyncInterval; acknowledged data
	// written since the last sync may be lost on power failure.
	DurabilityInterval Durability = "interval"
	// DurabilityNever leaves flushing to the OS page cache.
	DurabilityNever Durability = "never"
)

// Config is Weir's whole configuration. The zero value is not valid; start
// from Defaults.
type Config struct {
	// DataDir holds all durable state.
	DataDir string `koanf:"data-dir"`
	// KafkaAddr is the Kafka protocol listen address.
	KafkaAddr string `koanf:"kafka-addr"`
	// AdvertisedKafkaAddr is the host:port clients are told to connect to;
	// empty means the bound listen address.
	AdvertisedKafkaAddr string `koanf:"advertised-kafka-addr"`
	// HTTPAddr serves the console, CloudEvents, /metrics and /healthz.
	HTTPAddr string `koanf:"http-addr"`
	// RegistryAddr serves the schema registry API.
	RegistryAddr string `koanf:"registry-addr"`
	// AutoCreateTopics creates unknown topics on first produce/metadata.
	AutoCreateTopics bool `koanf:"auto-create-topics"`
	// TopicNamePattern, when set, is a regular expression every topic a
	// client creates must match in full; others get POLICY_VIOLATION.
	TopicNamePattern string `koanf:"topic-name-pattern"`
	// RequireTopicSchema refuses (POLICY_VIOLATION) to create a topic
	// before a schema is registered under its subject "<topic>-value".
	RequireTopicSchema bool `koanf:"require-topic-schema"`
	// DefaultPartitions is the partition count of auto-created topics.
	DefaultPartitions int32 `koanf:"default-partitions"`
	// Durability is the log fsync policy.
	Durability Durability `koanf:"durability"`
	// SyncInterval is the fsync period for DurabilityInterval.
	SyncInterval time.Duration `koanf:"sync-interval"`
	// SegmentBytes is the default segment.bytes.
	SegmentBytes int64 `koanf:"segment-bytes"`
	// RetentionMs is the default retention.ms (-1 keeps forever).
	RetentionMs int64 `koanf:"retention-ms"`
	// RetentionBytes is the default retention.bytes (-1 = unlimited).
	RetentionBytes int64 `koanf:"retention-bytes"`
	// MaxMessageBytes is the default max.message.bytes.
	MaxMessageBytes int32 `koanf:"max-message-bytes"`
	// LogRetentionCheckInterval is how often retention runs: segments
	// past segment.ms are rolled and those past retention.ms or
	// retention.bytes deleted (log.retention.check.interval.ms; Kafka's
	// default is 5 minutes, Weir's 5 seconds so retention is prompt).
	LogRetentionCheckInterval time.Duration `koanf:"log-retention-check-interval"`
	// LogCleanerBackoff is how often the cleaner looks for work
	// (log.cleaner.backoff.ms; Kafka's default is 15 seconds).
	LogCleanerBackoff time.Duration `koanf:"log-cleaner-backoff"`
	// LogCleanerDedupeBufferSize bounds the cleaner's key map, 24 bytes a
	// key (log.cleaner.dedupe.buffer.size).
	LogCleanerDedupeBufferSize int64 `koanf:"log-cleaner-dedupe-buffer-size"`
	// LogCleanerIOMaxBytesPerSecond caps the cleaner's disk reads and
	// writes; 0 is unlimited (log.cleaner.io.max.bytes.per.second).
	LogCleanerIOMaxBytesPerSecond float64 `koanf:"log-cleaner-io-max-bytes-per-second"`
	// InternalSegmentBytes is the segment.bytes of the internal topics
	// (offsets.topic.segment.bytes).
	InternalSegmentBytes int64 `koanf:"internal-segment-bytes"`
	// Archive is the tiered storage of topics with
	// remote.storage.enable=true: file://DIR or s3://BUCKET/PREFIX (the
	// S3 endpoint and credentials from the AWS_* environment). Empty: no
	// archive, and remote.storage.enable is stored only.
	Archive string `koanf:"archive"`
	// ArchiveMaxLag is how long a sealed segment of a tiered topic may
	// wait for upload before /readyz fails its archive check (the store
	// down or too slow; local disk then holds segments past local
	// retention). 0 turns the check off.
	ArchiveMaxLag time.Duration `koanf:"archive-max-lag"`
	// RemoteCacheBytes bounds the local copies of archived segments that
	// reads below a tiered partition's local log start are served from
	// (files under DataDir/remote-cache, wiped at start), in bytes on disk.
	RemoteCacheBytes int64 `koanf:"remote-cache-bytes"`
	// GroupInitialRebalanceDelay holds an empty group's first rebalance
	// open for more members (group.initial.rebalance.delay.ms).
	GroupInitialRebalanceDelay time.Duration `koanf:"group-initial-rebalance-delay"`
	// GroupMinSessionTimeout and GroupMaxSessionTimeout bound consumer
	// session timeouts (group.min/max.session.timeout.ms).
	GroupMinSessionTimeout time.Duration `koanf:"group-min-session-timeout"`
	GroupMaxSessionTimeout time.Duration `koanf:"group-max-session-timeout"`
	// OffsetsRetention keeps an empty group's offsets this long
	// (offsets.retention.minutes).
	OffsetsRetention time.Duration `koanf:"offsets-retention"`
	// TransactionMaxTimeout is the largest transaction.timeout.ms a
	// transactional producer may ask for (transaction.max.timeout.ms).
	TransactionMaxTimeout time.Duration `koanf:"transaction-max-timeout"`
	// TransactionalIDExpiration forgets a transactional id idle this long
	// (transactional.id.expiration.ms).
	TransactionalIDExpiration time.Duration `koanf:"transactional-id-expiration"`
	// TransactionMaxPartitions bounds the partitions and groups one
	// transaction may add.
	TransactionMaxPartitions int `koanf:"transaction-max-partitions"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `koanf:"log-level"`
	// LogFormat is text or json.
	LogFormat string `koanf:"log-format"`
}

// Defaults returns the embedded development defaults: everything on
// loopback, data in ./weir-data, durable acks.
func Defaults() Config {
	return Config{
		DataDir:                    "./weir-data",
		KafkaAddr:                  "127.0.0.1:9092",
		HTTPAddr:                   "127.0.0.1:8080",
		RegistryAddr:               "127.0.0.1:8081",
		AutoCreateTopics:           true,
		DefaultPartitions:          1,
		Durability:                 DurabilityAlways,
		SyncInterval:               time.Second,
		SegmentBytes:               1 << 30,
		RetentionMs:                7 * 24 * 3600 * 1000,
		RetentionBytes:             -1,
		MaxMessageBytes:            1048588,
		LogRetentionCheckInterval:  5 * time.Second,
		LogCleanerBackoff:          5 * time.Second,
		ArchiveMaxLag:              5 * time.Minute,
		LogCleanerDedupeBufferSize: 128 << 20,
		InternalSegmentBytes:       100 << 20,
		RemoteCacheBytes:           1 << 30,
		GroupInitialRebalanceDelay: 3 * time.Second,
		GroupMinSessionTimeout:     6 * time.Second,
		GroupMaxSessionTimeout:     30 * time.Minute,
		OffsetsRetention:           7 * 24 * time.Hour,
		TransactionMaxTimeout:      15 * time.Minute,
		TransactionalIDExpiration:  7 * 24 * time.Hour,
		TransactionMaxPartitions:   10000,
		LogLevel:                   "info",
		LogFormat:                  "text",
	}
}

// Validate reports the first problem with c as one readable error.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	for _, a := range []struct{ name, v string }{{"kafka-addr", c.KafkaAddr}, {"http-addr", c.HTTPAddr}, {"registry-addr", c.RegistryAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port", a.name, a.v))
		}
	}
	if c.AdvertisedKafkaAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertisedKafkaAddr); err != nil {
			errs = append(errs, fmt.Errorf("advertised-kafka-addr %q: want host:port", c.AdvertisedKafkaAddr))
		}
	}
	switch c.Durability {
	case DurabilityAlways, DurabilityNever:
	case DurabilityInterval:
		if c.SyncInterval <= 0 {
			errs = append(errs, errors.New("sync-interval must be positive with durability=interval"))
		}
	default:
		errs = append(errs, fmt.Errorf("durability %q: want always, interval or never", c.Durability))
	}
	if c.TopicNamePattern != "" {
		if _, err := regexp.Compile(c.TopicNamePattern); err != nil {
			errs = append(errs, fmt.Errorf("topic-name-pattern %q: %w", c.TopicNamePattern, err))
		}
	}
	if c.DefaultPartitions < 1 || c.DefaultPartitions > 10000 {
		errs = append(errs, fmt.Errorf("default-partitions %d: want 1..10000", c.DefaultPartitions))
	}
	if c.SegmentBytes < 14 || c.SegmentBytes > 1<<31-1 {
		errs = append(errs, fmt.Errorf("segment-bytes %d: want 14..2147483647", c.SegmentBytes))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("max-message-bytes %d: must not be negative", c.MaxMessageBytes))
	}
	if c.LogRetentionCheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("log-retention-check-interval %v: must be positive", c.LogRetentionCheckInterval))
	}
	if c.LogCleanerDedupeBufferSize < 1<<20 {
		errs = append(errs, fmt.Errorf("log-cleaner-dedupe-buffer-size %d: want at least 1 MiB", c.LogCleanerDedupeBufferSize))
	}
	if c.LogCleanerIOMaxBytesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("log-cleaner-io-max-bytes-per-second %v: must not be negative", c.LogCleanerIOMaxBytesPerSecond))
	}
	if c.Archive != "" && !strings.HasPrefix(c.Archive, "file://") && !strings.HasPrefix(c.Archive, "s3://") {
		errs = append(errs, fmt.Errorf("archive %q: want file://DIR or s3://BUCKET/PREFIX", c.Archive))
	}
	if c.RemoteCacheBytes <= 0 {
		errs = append(errs, fmt.Errorf("remote-cache-bytes %d: must be positive", c.RemoteCacheBytes))
	}
	if c.InternalSegmentBytes < 4096 || c.InternalSegmentBytes > 1<<31-1 {
		errs = append(errs, fmt.Errorf("internal-segment-bytes %d: want 4096..2147483647", c.InternalSegmentBytes))
	}
	if c.ArchiveMaxLag < 0 {
		errs = append(errs, fmt.Errorf("archive-max-lag %v: must not be negative", c.ArchiveMaxLag))
	}
	if c.LogCleanerBackoff <= 0 {
		errs = append(errs, fmt.Errorf("log-cleaner-backoff %v: must be positive", c.LogCleanerBackoff))
	}
	if c.GroupInitialRebalanceDelay < 0 {
		errs = append(errs, fmt.Errorf("group-initial-rebalance-delay %v: must not be negative", c.GroupInitialRebalanceDelay))
	}
	if c.GroupMinSessionTimeout <= 0 || c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout {
		errs = append(errs, fmt.Errorf("group session timeouts [%v, %v]: want 0 < min <= max", c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout))
	}
	if c.OffsetsRetention <= 0 {
		errs = append(errs, fmt.Errorf("offsets-retention %v: must be positive", c.OffsetsRetention))
	}
	if c.TransactionMaxTimeout <= 0 {
		errs = append(errs, fmt.Errorf("transaction-max-timeout %v: must be positive", c.TransactionMaxTimeout))
	}
	if c.TransactionalIDExpiration <= 0 {
		errs = append(errs, fmt.Errorf("transactional-id-expiration %v: must be positive", c.TransactionalIDExpiration))
	}
	if c.TransactionMaxPartitions < 1 || c.TransactionMaxPartitions > 1000000 {
		errs = append(errs, fmt.Errorf("transaction-max-partitions %d: want 1..1000000", c.TransactionMaxPartitions))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format %q: want text or json", c.LogFormat))
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}
