package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/server"
)

// weir archive restore of a tiered topic whose aborted transactions lie in
// archived segments only, after a restart: restore reads the source
// read_committed (its aborted transactions from the transaction indexes
// uploaded with the segments) and writes plain records, so the new topic
// holds the committed records only, for any reader.
func TestArchiveRestoreSkipsArchivedAbortedTxns(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Archive = "file://" + filepath.Join(t.TempDir(), "archive")
	cfg.Durability = config.DurabilityNever
	start := func() *server.Server {
		srv, err := server.Start(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			ArchiveInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		return srv
	}
	srv := start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	keep := "1"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{"remote.storage.enable": ptr("true"),
		"segment.bytes": ptr("2048"), "local.retention.bytes": &keep, "retention.ms": ptr("-1")}, "src"); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	tx, err := kgo.NewClient(kgo.SeedBrokers(srv.KafkaAddr()), kgo.TransactionalID("restore-archived"),
		kgo.DefaultProduceTopic("src"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	var committed int
	for i := range 12 {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		abort := i%3 == 0
		for j := range 5 {
			v := fmt.Sprintf("committed %d-%d %s", i, j, strings.Repeat("x", 200))
			if abort {
				v = "aborted " + v
			}
			if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		end := kgo.TryCommit
		if abort {
			end = kgo.TryAbort
		} else {
			committed += 5
		}
		if err := tx.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	tx.Close()
	p, err := srv.Broker().Partition("src", 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.LocalLogStartOffset() < p.HighWatermark()/2 || srv.Broker().ArchiveLag() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not archived: local start %d of %d", p.LocalLogStartOffset(), p.HighWatermark())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv = start()

	c := &cli{t: t, env: map[string]string{"WEIR_BROKERS": srv.KafkaAddr(), "WEIR_HTTP": srv.HTTPAddr()}}
	r := c.runLine("weir archive restore src --to dst")
	if r.err != nil {
		t.Fatal(r.message())
	}
	if want := fmt.Sprintf("Restored %d records of src into dst.", committed); !strings.Contains(r.stdout, want) {
		t.Fatalf("restore printed:\n%s\nwant %q", r.stdout, want)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(srv.KafkaAddr()), kgo.ConsumeTopics("dst"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())) // read_uncommitted: dst has no transactions
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for n := 0; n < committed; {
		fs := rd.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if strings.HasPrefix(string(rec.Value), "aborted") {
				t.Fatalf("restored an aborted record at %d: %.20q", rec.Offset, rec.Value)
			}
			n++
		})
	}
}

func ptr(s string) *string { return &s }
