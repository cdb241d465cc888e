package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/embedded"
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
	if err := f.Parse([]string{"--config", file, "--kafka-addr", "127.0.0.1:3333", "--log-retention-check-interval", "250ms"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(f, []string{"WEIR_KAFKA_ADDR=127.0.0.1:2222", "WEIR_DEFAULT_PARTITIONS=4", "WEIR_LOG_CLEANER_BACKOFF=1m", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Defaults()
	want.DataDir = "/from/file"              // file
	want.KafkaAddr = "127.0.0.1:3333"        // flag beats env beats file
	want.DefaultPartitions = 4               // env
	want.Durability = config.DurabilityNever // file
	want.SyncInterval = 2 * time.Second
	want.LogRetentionCheckInterval = 250 * time.Millisecond // flag
	want.LogCleanerBackoff = time.Minute                    // env
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
		{[]string{"--log-retention-check-interval", "0s"}, nil, "log-retention-check-interval"},
		{nil, []string{"WEIR_LOG_CLEANER_BACKOFF=-1s"}, "log-cleaner-backoff"},
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

// TestServeDataDirInUse: weir serve and weir dev on a data directory that
// another Weir process holds exit 1 at once with one line naming the
// holder's pid (here the test process, which runs an embedded broker on
// it) and bind nothing.
func TestServeDataDirInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := embedded.Start(embedded.Options{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := fmt.Sprintf("weir: broker: data directory %s is in use by another Weir process (pid %d)", dir, os.Getpid())
	addrs := []string{"--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0"}
	for _, sub := range []string{"serve", "dev"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], append([]string{sub}, addrs...)...)
		cmd.Env = append(os.Environ(), "WEIR_TEST_MAIN=1")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("weir %s on a directory in use: %v, want exit status 1", sub, err)
		}
		if stderr.String() != want+"\n" || stdout.Len() > 0 {
			t.Errorf("weir %s on a directory in use: stdout %q stderr %q; want the one line %q", sub, stdout.String(), stderr.String(), want)
		}
	}
}
