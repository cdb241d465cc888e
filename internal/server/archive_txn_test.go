package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnValue is the value of the record keyed key: tierRecordLen
// pseudo-random bytes (incompressible), so a few transactions fill a
// segment.
func txnValue(key string) []byte {
	h := fnv.New64a()
	h.Write([]byte(key))
	r := rand.New(rand.NewPCG(h.Sum64(), 7))
	v := make([]byte, tierRecordLen)
	for i := range v {
		v[i] = byte(r.Uint32())
	}
	return v
}

// produceTxns writes n transactions of perTxn records with a franz-go
// transactional producer, every third aborted, each followed by a plain
// record from an idempotent producer; it returns the keys a read_committed
// consumer must read, in order.
func produceTxns(t *testing.T, s *Server, n, perTxn int) []string {
	t.Helper()
	opts := []kgo.Opt{kgo.DefaultProduceTopic(tieredTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(16 << 10)}
	tx := client(t, s, append(opts, kgo.TransactionalID("tiered-txn"))...)
	plain := client(t, s, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var committed []string
	for i := range n {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		abort := i%3 == 1
		var keys []string
		for j := range perTxn {
			k := fmt.Sprintf("commit-%03d-%02d", i, j)
			if abort {
				k = fmt.Sprintf("abort-%03d-%02d", i, j)
			}
			keys = append(keys, k)
			tx.Produce(ctx, &kgo.Record{Key: []byte(k), Value: txnValue(k)}, nil)
		}
		if err := tx.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		end := kgo.TryCommit
		if abort {
			end = kgo.TryAbort
		} else {
			committed = append(committed, keys...)
		}
		if err := tx.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("plain-%03d", i)
		if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: txnValue(k)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		committed = append(committed, k)
	}
	return committed
}

// consumeCommitted reads the tiered topic from offset 0 with a franz-go
// read_committed consumer and checks it reads exactly want, in order.
func consumeCommitted(t *testing.T, s *Server, want []string) {
	t.Helper()
	cl := client(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tieredTopic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxBytes(256<<10), kgo.FetchMaxPartitionBytes(256<<10))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := 0
	for next < len(want) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d committed records: %v", next, len(want), err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if next >= len(want) || string(r.Key) != want[next] || !bytes.Equal(r.Value, txnValue(want[next])) {
				w := "nothing more"
				if next < len(want) {
					w = want[next]
				}
				t.Fatalf("read_committed record %d at offset %d is %q, want %s", next, r.Offset, r.Key, w)
			}
			next++
		})
	}
}

// TestArchiveReadCommittedAfterRestart: a transactional franz-go producer
// commits and aborts transactions on a tiered topic; the segments are
// archived to a file:// archive and their local copies deleted; after a
// restart (whose in-memory aborted-transactions index holds only the
// local log's) a franz-go read_committed consumer from offset 0 reads
// exactly the committed records: the archived segments' aborted
// transactions come from the transaction indexes uploaded with them.
func TestArchiveReadCommittedAfterRestart(t *testing.T) {
	node := tierNode{dir: t.TempDir(), archive: "file://" + filepath.Join(t.TempDir(), "archive")}
	s := node.start(t)
	createTiered(t, s)
	want := produceTxns(t, s, 30, 20) // about 620 KB: most of it archived only
	p := waitArchived(t, s, 30*time.Second)
	if p.LocalLogStartOffset() < p.HighWatermark()/2 {
		t.Fatalf("local log start %d of %d: too little archived only", p.LocalLogStartOffset(), p.HighWatermark())
	}
	consumeCommitted(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = node.start(t)
	waitArchived(t, s, 30*time.Second)
	consumeCommitted(t, s, want)
	// The archive holds the transaction indexes beside their segments,
	// and verify checks them.
	names, err := filepath.Glob(filepath.Join(strings.TrimPrefix(node.archive, "file://"), "*", "0", "*.txnindex"))
	if err != nil || len(names) == 0 {
		t.Fatalf("transaction index objects: %v, %v", names, err)
	}
	code, body := get(t, "http://"+s.HTTPAddr()+"/archive/"+tieredTopic)
	var ls ArchiveListJSON
	if err := json.Unmarshal([]byte(body), &ls); code != 200 || err != nil || len(ls.Partitions) != 1 {
		t.Fatalf("GET /archive: %d %v", code, err)
	}
	withIndex := 0
	for _, g := range ls.Partitions[0].Segments {
		if g.TxnIndexBytes == nil {
			t.Fatalf("segment %d listed without its transaction index", g.BaseOffset)
		}
		if *g.TxnIndexBytes > 0 {
			withIndex++
		}
	}
	if withIndex != len(names) {
		t.Fatalf("%d segments list an index, %d objects", withIndex, len(names))
	}
	segs, _, problems, err := s.Broker().VerifyArchive(context.Background(), tieredTopic)
	if err != nil || len(problems) > 0 || segs == 0 {
		t.Fatalf("verify: %d segments, problems %v, err %v", segs, problems, err)
	}
	// Deleting the topic deletes the indexes with the segments.
	if err := s.Broker().DeleteTopic(tieredTopic); err != nil {
		t.Fatal(err)
	}
	waitForIn(t, 10*time.Second, "the deleted topic's archived objects deleted", func() bool {
		left, _ := filepath.Glob(filepath.Join(strings.TrimPrefix(node.archive, "file://"), "*", "0", "*.txnindex"))
		return len(left) == 0
	})
}
