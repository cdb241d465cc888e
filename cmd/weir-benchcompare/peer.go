package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/nullbroker"
	"github.com/weirhq/weir/internal/server"
)

// kinds are the brokers a peer process can run.
var kinds = []string{
	"weir-always", "weir-never", "weir-cleaner-busy", "weir-cleaner-idle", "weir-cleaner-throttled", "weir-cleaner-default",
	"weir-archive-off", "weir-archive-on", "weir-archive-copy",
	"kfake-mem", "kfake-dir", "kfake-sync",
	"null-ack", "null-file", "null-fsync", "null-file-pp", "null-fsync-pp",
}

// peerMain runs one broker in this process until SIGTERM: Weir (exactly
// as `weir serve` starts it, through server.Start), franz-go's kfake, or
// the null broker. It prints "ready ADDR" on stdout once it serves, Weir
// "ready ADDR http=HTTPADDR" (its /metrics).
//
// weir-cleaner-busy and weir-cleaner-idle are weir-always with the log
// cleaner looking for work every 100 ms (`weir serve
// --log-cleaner-backoff 100ms`) or every hour (never, in a run), both
// with --log-retention-check-interval 200ms, for the compact workload;
// weir-cleaner-throttled is weir-cleaner-busy with
// --log-cleaner-io-max-bytes-per-second compactThrottle, and
// weir-cleaner-default the cleaner's defaults (5 s backoff).
//
// weir-archive-off and weir-archive-on are weir-always with the data in
// DIR/data, the second with `--archive file://DIR/archive` (the same
// disk: segments hard-linked), for the archive workload;
// weir-archive-copy is weir-archive-on with file://DIR/archive?link=false
// (segments copied, as before links).
func peerMain(args []string) error {
	fs := flag.NewFlagSet("peer", flag.ExitOnError)
	kind := fs.String("kind", "", "broker to run: "+fmt.Sprint(kinds))
	addr := fs.String("addr", "127.0.0.1:0", "Kafka listen address")
	dir := fs.String("dir", "", "data directory")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	memProfile := fs.String("memprofile", "", "write an allocation profile (alloc_space) here at exit")
	_ = fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("peer: -dir is required")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var (
		listen, http string
		closer       func() error
	)
	switch *kind {
	case "weir-always", "weir-never", "weir-cleaner-busy", "weir-cleaner-idle", "weir-cleaner-throttled", "weir-cleaner-default",
		"weir-archive-off", "weir-archive-on", "weir-archive-copy":
		cfg := config.Defaults()
		cfg.DataDir = *dir
		cfg.KafkaAddr = *addr
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.RegistryAddr = "127.0.0.1:0"
		cfg.LogLevel = "warn"
		cfg.Durability = config.DurabilityAlways
		switch *kind {
		case "weir-never":
			cfg.Durability = config.DurabilityNever
		case "weir-cleaner-busy":
			cfg.LogCleanerBackoff, cfg.LogRetentionCheckInterval = 100*time.Millisecond, 200*time.Millisecond
		case "weir-cleaner-idle":
			cfg.LogCleanerBackoff, cfg.LogRetentionCheckInterval = time.Hour, 200*time.Millisecond
		case "weir-cleaner-throttled":
			cfg.LogCleanerBackoff, cfg.LogRetentionCheckInterval = 100*time.Millisecond, 200*time.Millisecond
			cfg.LogCleanerIOMaxBytesPerSecond = compactThrottle
		case "weir-cleaner-default":
			cfg.LogRetentionCheckInterval = 200 * time.Millisecond
		case "weir-archive-off":
			cfg.DataDir = filepath.Join(*dir, "data")
		case "weir-archive-on", "weir-archive-copy":
			abs, err := filepath.Abs(*dir)
			if err != nil {
				return err
			}
			cfg.DataDir, cfg.Archive = filepath.Join(abs, "data"), "file://"+filepath.Join(abs, "archive")
			if *kind == "weir-archive-copy" {
				cfg.Archive += "?link=false"
			}
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		srv, err := server.Start(cfg, server.Options{Logger: logger})
		if err != nil {
			return err
		}
		listen, http, closer = srv.KafkaAddr(), srv.HTTPAddr(), srv.Close
	case "kfake-mem", "kfake-dir", "kfake-sync":
		_, p, err := net.SplitHostPort(*addr)
		if err != nil {
			return err
		}
		port, _ := strconv.Atoi(p)
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port)}
		if *kind != "kfake-mem" {
			opts = append(opts, kfake.DataDir(*dir))
		}
		if *kind == "kfake-sync" {
			opts = append(opts, kfake.SyncWrites())
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			return err
		}
		listen, closer = c.ListenAddrs()[0], func() error { c.Close(); return nil }
	case "null-ack", "null-file", "null-fsync", "null-file-pp", "null-fsync-pp":
		// null-file and null-fsync write one shared file (one fdatasync
		// covers every partition: the ceiling); the -pp variants write a
		// file per partition, as Kafka lays out its logs.
		name := strings.TrimPrefix(*kind, "null-")
		perPartition := strings.HasSuffix(name, "-pp")
		mode, err := nullbroker.ParseMode(strings.TrimSuffix(name, "-pp"))
		if err != nil {
			return err
		}
		s, err := nullbroker.Listen(*addr, mode, *dir, perPartition)
		if err != nil {
			return err
		}
		listen, closer = s.Addr(), s.Close
	default:
		return fmt.Errorf("peer: -kind %q: want one of %v", *kind, kinds)
	}
	if http != "" {
		listen += " http=" + http
	}
	fmt.Printf("ready %s\n", listen)
	<-ctx.Done()
	err := closer()
	if *memProfile != "" {
		f, ferr := os.Create(*memProfile)
		if ferr != nil {
			return ferr
		}
		runtime.GC()
		if perr := pprof.Lookup("allocs").WriteTo(f, 0); perr != nil {
			return perr
		}
		_ = f.Close()
	}
	return err
}
