package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupTransactSessionExactlyOnce runs franz-go's consume-transform-
// produce loop (kgo.GroupTransactSession, as franz-go's examples/
// transactions/eos): 100 input records over two partitions are consumed
// by group "eos" and produced transformed to "out", each poll's records
// and offsets committed in one transaction. A read_committed reader of
// "out" sees every record exactly once, and the group's committed
// offsets are the end of the input.
func TestGroupTransactSessionExactlyOnce(t *testing.T) {
	s := startNode(t, t.TempDir(), nil)
	for _, topic := range []string{"in", "out"} {
		if _, err := s.Broker().CreateTopic(topic, 2, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := client(t, s, kgo.DefaultProduceTopic("in"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 100 {
		r := &kgo.Record{Value: fmt.Appendf(nil, "r%d", i), Partition: int32(i % 2)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()

	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(s.KafkaAddr()),
		kgo.TransactionalID("eos-txn"), kgo.ConsumerGroup("eos"), kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic("out"))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := 0
	for done < 100 {
		fs := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%d of 100 records committed: %v", done, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("End: %v", err)
		}
		if committed {
			done += n
		}
	}
	if done != 100 {
		t.Fatalf("%d records committed, want 100", done)
	}

	// EndTxn answers once the offsets are resolved (unless that took
	// longer than the coordinator's settle wait), so this normally holds
	// at the first look.
	adm := kadm.NewClient(client(t, s))
	waitFor(t, "group eos at the end of the input", func() bool {
		offs, err := adm.FetchOffsets(ctx, "eos")
		if err != nil {
			t.Fatal(err)
		}
		for part := range int32(2) {
			if o, ok := offs.Lookup("in", part); !ok || o.Err != nil || o.At != 50 {
				return false
			}
		}
		return true
	})

	c := client(t, s, kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]int{}
	total := 0
	for total < 100 {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of 100 output records: %v", total, err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++; total++ })
	}
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer pcancel()
	c.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++; total++ })
	if total != 100 || len(seen) != 100 {
		t.Fatalf("read %d output records, %d distinct, want 100 each once", total, len(seen))
	}
	for i := range 100 {
		if v := fmt.Sprintf("out-r%d", i); seen[v] != 1 {
			t.Fatalf("%s read %d times", v, seen[v])
		}
	}
}
