package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGoGroupConsumers: three franz-go group members share six
// partitions; every record is consumed exactly once, offsets are
// committed, and a new consumer in the same group resumes after them.
func TestFranzGoGroupConsumers(t *testing.T) {
	for _, balancer := range []struct {
		name string
		b    kgo.GroupBalancer
	}{{"range", kgo.RangeBalancer()}, {"cooperative-sticky", kgo.CooperativeStickyBalancer()}} {
		t.Run(balancer.name, func(t *testing.T) {
			ts := startServer(t, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			topic := "grp-" + balancer.name
			if _, err := ts.opts.Broker.CreateTopic(topic, 6, nil, false); err != nil {
				t.Fatal(err)
			}
			prod, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			const n = 600
			for i := 0; i < n; i++ {
				prod.Produce(ctx, kgo.StringRecord(fmt.Sprint(i)), nil)
			}
			if err := prod.Flush(ctx); err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			consumers := make([]*kgo.Client, 3)
			for i := range consumers {
				cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumerGroup("g-"+balancer.name), kgo.ConsumeTopics(topic),
					kgo.Balancers(balancer.b), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
					kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				consumers[i] = cl
			}
			done := make(chan struct{})
			for _, cl := range consumers {
				wg.Add(1)
				go func(cl *kgo.Client) {
					defer wg.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
						fs := cl.PollFetches(pctx)
						pcancel()
						fs.EachRecord(func(r *kgo.Record) {
							mu.Lock()
							seen[string(r.Value)]++
							mu.Unlock()
						})
						if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
							t.Errorf("commit: %v", err)
						}
					}
				}(cl)
			}
			deadline := time.After(45 * time.Second)
			for {
				mu.Lock()
				got := len(seen)
				mu.Unlock()
				if got == n {
					break
				}
				select {
				case <-deadline:
					t.Fatalf("consumed %d distinct of %d", got, n)
				case <-time.After(50 * time.Millisecond):
				}
			}
			close(done)
			wg.Wait()
			for _, cl := range consumers {
				cl.Close()
			}
			for v, c := range seen {
				if c != 1 {
					t.Errorf("record %s consumed %d times", v, c)
				}
			}

			adm := kadm.NewClient(prod)
			offs, err := adm.FetchOffsets(ctx, "g-"+balancer.name)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			offs.Each(func(o kadm.OffsetResponse) { total += o.At })
			if total != n {
				t.Fatalf("committed offsets sum to %d, want %d", total, n)
			}
			lags, err := adm.Lag(ctx, "g-"+balancer.name)
			if err != nil {
				t.Fatal(err)
			}
			if l := lags["g-"+balancer.name]; l.Error() != nil || l.Lag.Total() != 0 {
				t.Fatalf("lag %+v", l)
			}
		})
	}
}
