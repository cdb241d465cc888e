package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/server"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Weir broker (Kafka protocol on 127.0.0.1:9092, data in ./weir-data)",
		Long: `Run a Weir broker with embedded defaults. Settings come from, lowest first:
defaults, the YAML file named by --config, WEIR_* environment variables
(e.g. WEIR_DATA_DIR, WEIR_KAFKA_ADDR) and flags.`,
		Args: cobra.NoArgs,
	}
	d := config.Defaults()
	f := cmd.Flags()
	f.String("config", "", "YAML config file (keys as the flag names)")
	f.String("data-dir", d.DataDir, "directory for all durable state")
	f.String("kafka-addr", d.KafkaAddr, "Kafka protocol listen address")
	f.String("advertised-kafka-addr", d.AdvertisedKafkaAddr, "address clients are told to connect to (default: the listen address)")
	f.String("http-addr", d.HTTPAddr, "HTTP address (console, CloudEvents, metrics)")
	f.String("registry-addr", d.RegistryAddr, "schema registry address")
	f.Bool("auto-create-topics", d.AutoCreateTopics, "create unknown topics on first use")
	f.String("topic-name-pattern", d.TopicNamePattern, "regular expression new topics' names must match in full (policy)")
	f.Bool("require-topic-schema", d.RequireTopicSchema, "refuse to create a topic before a schema is registered under <topic>-value (policy)")
	f.Int32("default-partitions", d.DefaultPartitions, "partitions of auto-created topics")
	f.String("durability", string(d.Durability), "fsync policy: always (ack after fdatasync), interval, never")
	f.Duration("sync-interval", d.SyncInterval, "fsync period with --durability=interval")
	f.Int64("segment-bytes", d.SegmentBytes, "default segment.bytes")
	f.Int64("retention-ms", d.RetentionMs, "default retention.ms (-1 keeps forever)")
	f.Int64("retention-bytes", d.RetentionBytes, "default retention.bytes (-1 unlimited)")
	f.Int32("max-message-bytes", d.MaxMessageBytes, "default max.message.bytes")
	f.Duration("log-retention-check-interval", d.LogRetentionCheckInterval, "how often segments past segment.ms are rolled and those past retention deleted (log.retention.check.interval.ms)")
	f.Duration("log-cleaner-backoff", d.LogCleanerBackoff, "how often the cleaner looks for work (log.cleaner.backoff.ms)")
	f.Int64("log-cleaner-dedupe-buffer-size", d.LogCleanerDedupeBufferSize, "memory for the cleaner's key map, 24 bytes a key (log.cleaner.dedupe.buffer.size)")
	f.Float64("log-cleaner-io-max-bytes-per-second", d.LogCleanerIOMaxBytesPerSecond, "cap on the cleaner's disk reads and writes, 0 unlimited (log.cleaner.io.max.bytes.per.second)")
	f.Int64("internal-segment-bytes", d.InternalSegmentBytes, "segment.bytes of the internal topics such as __consumer_offsets (offsets.topic.segment.bytes)")
	f.String("archive", d.Archive, "tiered storage for topics with remote.storage.enable=true: file://DIR (on the data directory's filesystem segments are hard-linked, not copied; file://DIR?link=false copies) or s3://BUCKET/PREFIX (endpoint and credentials from AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)")
	f.Duration("archive-max-lag", d.ArchiveMaxLag, "/readyz fails its archive check once a sealed segment of a tiered topic has waited this long for upload (0: no check)")
	f.Int64("remote-cache-bytes", d.RemoteCacheBytes, "disk space for local copies of archived segments that reads below a tiered partition's local log start are served from (under the data dir, wiped at start)")
	f.Duration("group-initial-rebalance-delay", d.GroupInitialRebalanceDelay, "how long an empty group's first rebalance waits for more members")
	f.Duration("group-min-session-timeout", d.GroupMinSessionTimeout, "smallest consumer session timeout accepted")
	f.Duration("group-max-session-timeout", d.GroupMaxSessionTimeout, "largest consumer session timeout accepted")
	f.Duration("offsets-retention", d.OffsetsRetention, "how long an empty group's committed offsets are kept")
	f.Duration("transaction-max-timeout", d.TransactionMaxTimeout, "largest transaction timeout a producer may ask for (transaction.max.timeout.ms)")
	f.Duration("transactional-id-expiration", d.TransactionalIDExpiration, "forget a transactional id idle this long (transactional.id.expiration.ms)")
	f.Int("transaction-max-partitions", d.TransactionMaxPartitions, "most partitions and groups one transaction may add")
	f.String("log-level", d.LogLevel, "debug, info, warn or error")
	f.String("log-format", d.LogFormat, "text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(f, os.Environ())
		if err != nil {
			return err
		}
		logger := newLogger(cfg)
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		srv, err := server.Start(cfg, server.Options{Logger: logger, Environ: os.Environ()})
		if err != nil {
			return err
		}
		return srv.Wait(ctx)
	}
	return cmd
}

// loadConfig layers defaults, the config file, WEIR_* env and set flags.
func loadConfig(f *pflag.FlagSet, environ []string) (config.Config, error) {
	k := koanf.New(".")
	cfg := config.Defaults()
	if path, _ := f.GetString("config"); path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	err := k.Load(env.Provider(".", env.Opt{
		Prefix:      "WEIR_",
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(key, v string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, "WEIR_"))
			if key == "brokers" || key == "config" {
				return "", nil
			}
			return strings.ReplaceAll(key, "_", "-"), v
		},
	}), nil)
	if err != nil {
		return cfg, fmt.Errorf("environment: %w", err)
	}
	// Only flags the user set override; defaults are already in cfg.
	if err := k.Load(posflag.ProviderWithFlag(f, ".", nil, func(fl *pflag.Flag) (string, any) {
		if !fl.Changed || fl.Name == "config" {
			return "", nil
		}
		return fl.Name, posflag.FlagVal(f, fl)
	}), nil); err != nil {
		return cfg, fmt.Errorf("flags: %w", err)
	}
	known := map[string]bool{}
	f.VisitAll(func(fl *pflag.Flag) { known[fl.Name] = true })
	for _, key := range k.Keys() {
		if !known[key] {
			return cfg, fmt.Errorf("unknown setting %q", key)
		}
	}
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, cfg.Validate()
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	hopts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, hopts))
}
