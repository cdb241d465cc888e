// Package embedded starts a real, durable Weir broker inside a Go program,
// typically a test: data on disk with fsync, the Kafka protocol on a free
// loopback port, so any Kafka client can talk to it.
//
//	b, err := embedded.Start(embedded.Options{})
//	if err != nil { ... }
//	defer b.Close()
//	client, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
package embedded

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/server"
)

// Options configure an embedded broker. The zero value is a good default.
type Options struct {
	// Dir holds the data; empty means a new temporary directory that Close
	// removes.
	Dir string
	// Addr is the Kafka listen address; default "127.0.0.1:0" (a free port).
	Addr string
	// Partitions is the partition count of auto-created topics (default 1).
	Partitions int32
	// DisableAutoCreate turns topic auto-creation off.
	DisableAutoCreate bool
	// NoSync trades durability for speed (durability=never).
	NoSync bool
	// Logger receives the broker's logs; default: discarded.
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv     *server.Server
	tempDir string
}

// Start starts a broker and returns once it accepts connections.
func Start(opts Options) (*Broker, error) {
	cfg := config.Defaults()
	b := &Broker{}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "weir-embedded-*")
		if err != nil {
			return nil, fmt.Errorf("embedded: temp dir: %w", err)
		}
		opts.Dir, b.tempDir = dir, dir
	}
	cfg.DataDir = opts.Dir
	cfg.KafkaAddr = "127.0.0.1:0"
	if opts.Addr != "" {
		cfg.KafkaAddr = opts.Addr
	}
	cfg.HTTPAddr = "127.0.0.1:0"     // /metrics and health on a free port: see HTTPAddr
	cfg.RegistryAddr = "127.0.0.1:0" // the schema registry too: see RegistryAddr
	if opts.Partitions > 0 {
		cfg.DefaultPartitions = opts.Partitions
	}
	cfg.AutoCreateTopics = !opts.DisableAutoCreate
	if opts.NoSync {
		cfg.Durability = config.DurabilityNever
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := server.Start(cfg, server.Options{Logger: opts.Logger})
	if err != nil {
		if b.tempDir != "" {
			_ = os.RemoveAll(b.tempDir)
		}
		return nil, err
	}
	b.srv = srv
	return b, nil
}

// Addr is the host:port Kafka clients should use as a seed broker.
func (b *Broker) Addr() string { return b.srv.KafkaAddr() }

// HTTPAddr is the host:port serving /metrics, /healthz, /readyz and the
// CloudEvents gateway (POST /events/{topic}, /subscriptions).
func (b *Broker) HTTPAddr() string { return b.srv.HTTPAddr() }

// RegistryAddr is the host:port serving the schema registry API
// (Confluent's REST API at the root: sr.URLs("http://" + b.RegistryAddr())).
func (b *Broker) RegistryAddr() string { return b.srv.RegistryAddr() }

// Close stops the broker cleanly and removes a temporary data directory.
func (b *Broker) Close() error {
	err := b.srv.Close()
	if b.tempDir != "" {
		if rerr := os.RemoveAll(b.tempDir); err == nil {
			err = rerr
		}
	}
	return err
}
