package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/server"
)

// weir archive ls and verify against a node with a file:// archive: the
// listing shows the archived ranges; a damaged object fails verify with
// one line, without naming server paths.
func TestArchiveCommands(t *testing.T) {
	archiveDir := filepath.Join(t.TempDir(), "archive")
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Archive = "file://" + archiveDir
	cfg.Durability = config.DurabilityNever
	srv, err := server.Start(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ArchiveInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c := &cli{t: t, env: map[string]string{"WEIR_BROKERS": srv.KafkaAddr(), "WEIR_HTTP": srv.HTTPAddr()}}

	if r := c.run("", "topic", "create", "logs", "-c", "remote.storage.enable=true", "-c", "segment.bytes=2048"); r.err != nil {
		t.Fatalf("create: %v\n%s", r.err, r.stderr)
	}
	for run := range 10 {
		var lines strings.Builder
		for i := range 10 {
			fmt.Fprintf(&lines, "record %03d %s\n", run*10+i, strings.Repeat("x", 100))
		}
		if r := c.run(lines.String(), "produce", "logs"); r.err != nil {
			t.Fatalf("produce: %v\n%s", r.err, r.stderr)
		}
	}
	p, err := srv.Broker().Partition("logs", 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, last, ok := p.ArchivedRange(); ok && last > 0 && srv.Broker().ArchiveLag() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing archived")
		}
		time.Sleep(20 * time.Millisecond)
	}

	r := c.run("", "archive", "ls", "logs")
	if r.err != nil || !strings.Contains(r.stdout, "SEGMENTS") || !strings.Contains(r.stdout, "LOCAL-START") {
		t.Fatalf("archive ls: %v\n%s", r.err, r.stdout)
	}
	r = c.run("", "archive", "ls", "logs", "--format", "json")
	var ls server.ArchiveListJSON
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &ls) != nil || len(ls.Partitions) != 1 || len(ls.Partitions[0].Segments) == 0 ||
		ls.Partitions[0].ArchiveStartOffset != 0 || !ls.Tiered {
		t.Fatalf("archive ls --format json: %v\n%s", r.err, r.stdout)
	}
	r = c.run("", "archive", "verify", "logs")
	if r.err != nil || !strings.Contains(r.stdout, "segments") {
		t.Fatalf("archive verify: %v\n%s", r.err, r.stdout)
	}
	if r := c.run("", "archive", "ls", "nope"); r.err == nil || !strings.Contains(r.message(), "unknown topic") {
		t.Fatalf("archive ls of an unknown topic: %v", r.err)
	}

	// Damage one archived segment object: verify reports it, in one line.
	var victim string
	_ = filepath.WalkDir(archiveDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && victim == "" && strings.HasSuffix(path, ".log") {
			victim = path
		}
		return nil
	})
	if victim == "" {
		t.Fatal("no segment object under the archive directory")
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r = c.run("", "archive", "verify", "logs")
	if r.err == nil || strings.Contains(r.message(), "\n") || !strings.Contains(r.message(), "1 problems") {
		t.Fatalf("verify of a damaged archive: %v\n%s", r.err, r.stdout)
	}
	if !strings.Contains(r.stdout, "crc32c") || strings.Contains(r.stdout, archiveDir) {
		t.Fatalf("verify output: %s", r.stdout)
	}
}
