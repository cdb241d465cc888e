package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/vfs"
)

// TestTransactionCommitPowerLoss cuts the power at every durable step of
// consume-transform-produce commits: franz-go's GroupTransactSession
// moves records from "in" to "out" (4 partitions each, record i of
// in/p to out/p) with the group's offsets in the same transaction, on a
// node whose filesystem is in memory. Before every fsync during the
// transactions' End (staged offsets, AddOffsetsToTxn, PrepareCommit,
// each partition's marker, the offsets' marker, CompleteCommit) the test
// keeps the disk a power loss would leave then, torn unsynced tails
// included. Each image is then started as a node and, once its
// transactions are resolved (completed from PrepareCommit, or aborted by
// timeout from Ongoing), must hold the exactly-once invariant: for every
// partition, the read_committed records of out/p are exactly in/p's
// records below the group's committed offset of in/p, in order, once
// each. A transaction seen half (some markers, not others; output without
// offsets or offsets without output) breaks it.
func TestTransactionCommitPowerLoss(t *testing.T) {
	const parts, perPart = 4, 12
	mem := vfs.NewMem()
	var (
		mu        sync.Mutex
		capturing bool
		images    []*vfs.MemFS
		seq       uint64
	)
	inj := vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op != vfs.OpSync && op != vfs.OpSyncDir {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if capturing {
			seq++
			images = append(images, mem.Crash(rand.New(rand.NewPCG(7, seq))))
		}
		return nil
	})
	fsys := vfs.NewErrorFS(mem, inj)
	s := startMemNode(t, fsys)
	for _, topic := range []string{"in", "out"} {
		if _, err := s.Broker().CreateTopic(topic, parts, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	p := client(t, s, kgo.DefaultProduceTopic("in"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range parts * perPart {
		part := i % parts
		r := &kgo.Record{Value: fmt.Appendf(nil, "%d-%d", part, i/parts), Partition: int32(part)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()

	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(s.KafkaAddr()),
		kgo.TransactionalID("pl-txn"), kgo.ConsumerGroup("pl"), kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.TransactionTimeout(2*time.Second),
		kgo.DefaultProduceTopic("out"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := 0
	for done < parts*perPart {
		fs := sess.PollRecords(ctx, 10)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%d records committed: %v", done, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			sess.Produce(ctx, &kgo.Record{Value: r.Value, Partition: r.Partition}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		})
		mu.Lock()
		capturing = true
		mu.Unlock()
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("End: %v", err)
		}
		if committed {
			done += n
		}
	}
	// The last commit's markers and offsets complete after End answers;
	// keep capturing until the node has resolved it.
	waitResolved(ctx, t, s, parts)
	mu.Lock()
	capturing = false
	captured := images
	mu.Unlock()
	checkExactlyOnce(ctx, t, s, parts)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Every image costs a node start; a long run keeps an even sample,
	// first and last included.
	const maxImages = 40
	if len(captured) < 5 {
		t.Fatalf("only %d fsyncs during the commits: the capture is not seeing them", len(captured))
	}
	picked := captured
	if len(picked) > maxImages {
		picked = nil
		for i := range maxImages {
			picked = append(picked, captured[i*(len(captured)-1)/(maxImages-1)])
		}
	}
	t.Logf("%d power-loss images during %d records' commits, %d checked", len(captured), done, len(picked))
	for i, img := range picked {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			s := startMemNode(t, img)
			waitResolved(ctx, t, s, parts)
			checkExactlyOnce(ctx, t, s, parts)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func startMemNode(t *testing.T, fsys vfs.FS) *Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = "/data"
	cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.GroupInitialRebalanceDelay = 0
	s, err := Start(cfg, Options{Logger: quiet, Metrics: metrics.New(), FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// waitResolved polls until no transaction holds "out" or the group's
// offsets: every partition's last stable offset is its high watermark,
// and OffsetFetch with RequireStable answers without
// UNSTABLE_OFFSET_COMMIT.
func waitResolved(ctx context.Context, t *testing.T, s *Server, parts int) {
	t.Helper()
	cl := client(t, s)
	adm := kadm.NewClient(cl)
	for {
		stable := true
		hw, err1 := adm.ListEndOffsets(ctx, "out")
		lso, err2 := adm.ListCommittedOffsets(ctx, "out")
		if err1 != nil || err2 != nil {
			stable = false
		} else {
			for p := range int32(parts) {
				h, _ := hw.Lookup("out", p)
				l, _ := lso.Lookup("out", p)
				if h.Err != nil || l.Err != nil || h.Offset != l.Offset {
					stable = false
				}
			}
		}
		if stable {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Group, req.RequireStable = "pl", true
			resp, err := req.RequestWith(ctx, cl)
			if err != nil || kerr.ErrorForCode(resp.ErrorCode) != nil {
				stable = false
			} else {
				for _, rt := range resp.Topics {
					for _, rp := range rt.Partitions {
						if rp.ErrorCode != 0 {
							stable = false
						}
					}
				}
			}
		}
		if stable {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("transactions never resolved: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkExactlyOnce checks that out/p's read_committed records are in/p's
// records below the group's committed offset, in order, once each.
func checkExactlyOnce(ctx context.Context, t *testing.T, s *Server, parts int) {
	t.Helper()
	cl := client(t, s)
	adm := kadm.NewClient(cl)
	offs, err := adm.FetchOffsets(ctx, "pl")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	total := int64(0)
	for p := range int32(parts) {
		if o, ok := offs.Lookup("in", p); ok {
			if o.Err != nil {
				t.Fatalf("offset of in/%d: %v", p, o.Err)
			}
			want[p] = o.At
			total += o.At
		}
	}
	// Read until every committed record arrived, then once more to see
	// that nothing else does; stop early when reads dry up short of it.
	got := map[int32][]string{}
	rd := client(t, s, kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	// The committed offsets say how many records there must be: wait for
	// them (up to 20 s, however loaded the machine), then poll once more
	// for any beyond.
	n := int64(0)
	deadline := time.Now().Add(20 * time.Second)
	for idle := 0; ; {
		if n >= total && idle > 0 || n < total && time.Now().After(deadline) {
			break
		}
		pctx, stop := context.WithTimeout(ctx, 300*time.Millisecond)
		fs := rd.PollFetches(pctx)
		stop()
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
		idle++
		fs.EachRecord(func(r *kgo.Record) {
			n, idle = n+1, 0
			got[r.Partition] = append(got[r.Partition], string(r.Value))
		})
	}
	for p := range int32(parts) {
		if int64(len(got[p])) != want[p] {
			t.Fatalf("out/%d holds %d committed records, but the group committed in/%d at %d: %q", p, len(got[p]), p, want[p], got[p])
		}
		for i, v := range got[p] {
			if exp := fmt.Sprintf("%d-%d", p, i); v != exp {
				t.Fatalf("out/%d record %d is %q, want %q (all: %q)", p, i, v, exp, got[p])
			}
		}
	}
}
