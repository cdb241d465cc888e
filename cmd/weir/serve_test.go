package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/config"
)

func TestLoadConfigLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(file, []byte("data-dir: /from/file\nkafka-addr: 127.0.0.1:1111\ndurability: never\nsync-interval: 2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := newServeCmd()
	f := cmd.Flags()
	if err := f.Parse([]string{"--config", file, "--kafka-addr", "127.0.0.1:3333"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(f, []string{"WEIR_KAFKA_ADDR=127.0.0.1:2222", "WEIR_DEFAULT_PARTITIONS=4", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Defaults()
	want.DataDir = "/from/file"              // file
	want.KafkaAddr = "127.0.0.1:3333"        // flag beats env beats file
	want.DefaultPartitions = 4               // env
	want.Durability = config.DurabilityNever // file
	want.SyncInterval = 2 * time.Second
	if cfg != want {
		t.Fatalf("config\n got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--durability", "sometimes"}, nil, "durability"},
		{nil, []string{"WEIR_NO_SUCH=1"}, `unknown setting "no-such"`},
		{[]string{"--config", "/does/not/exist.yaml"}, nil, "config file"},
		{nil, []string{"WEIR_DEFAULT_PARTITIONS=many"}, "default-partitions"},
	} {
		cmd := newServeCmd()
		if err := cmd.Flags().Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		_, err := loadConfig(cmd.Flags(), tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %v env %v: err %v, want it to mention %q", tc.args, tc.env, err, tc.want)
		}
	}
}
