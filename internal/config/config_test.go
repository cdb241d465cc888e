package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultsValid(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"bad addr", func(c *Config) { c.KafkaAddr = "nope" }, "kafka-addr"},
		{"bad durability", func(c *Config) { c.Durability = "sometimes" }, "durability"},
		{"zero interval", func(c *Config) { c.Durability = DurabilityInterval; c.SyncInterval = 0 }, "sync-interval"},
		{"partitions", func(c *Config) { c.DefaultPartitions = 0 }, "default-partitions"},
		{"segment", func(c *Config) { c.SegmentBytes = 1 << 40 }, "segment-bytes"},
		{"retention check", func(c *Config) { c.LogRetentionCheckInterval = 0 }, "log-retention-check-interval"},
		{"cleaner backoff", func(c *Config) { c.LogCleanerBackoff = -time.Second }, "log-cleaner-backoff"},
		{"level", func(c *Config) { c.LogLevel = "loud" }, "log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want error naming %q", err, tc.want)
			}
		})
	}
}
