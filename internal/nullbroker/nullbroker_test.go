package nullbroker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduce drives every mode with a franz-go idempotent producer, as
// weir bench does: records are acknowledged with rising offsets per
// partition, and the file modes store every batch.
func TestProduce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mode         Mode
		perPartition bool
	}{
		{"ack", ModeAck, false},
		{"file", ModeFile, false},
		{"fsync", ModeFsync, false},
		{"fsync-pp", ModeFsync, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Listen("127.0.0.1:0", tc.mode, dir, tc.perPartition)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr()), kgo.DefaultProduceTopic("t"),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "t"); err != nil {
				t.Fatal(err)
			}
			const n = 300
			next := map[int32]int64{}
			value := make([]byte, 100)
			for i := range n {
				r := cl.ProduceSync(ctx, &kgo.Record{Value: value, Partition: int32(i % 3)})
				rec, err := r.First()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if rec.Offset != next[rec.Partition] {
					t.Fatalf("record %d on partition %d got offset %d, want %d", i, rec.Partition, rec.Offset, next[rec.Partition])
				}
				next[rec.Partition]++
			}
			if tc.mode == ModeAck {
				return
			}
			var stored int64
			matches, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, m := range matches {
				fi, err := os.Stat(m)
				if err != nil {
					t.Fatal(err)
				}
				stored += fi.Size()
			}
			if want := map[bool]int{false: 1, true: 3}[tc.perPartition]; len(matches) != want {
				t.Errorf("%d files, want %d", len(matches), want)
			}
			if stored < n*int64(len(value)) {
				t.Errorf("%d bytes stored for %d records of %d bytes", stored, n, len(value))
			}
		})
	}
}
