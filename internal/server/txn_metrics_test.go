package server

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/internal/metrics"
)

// TestTransactionMetrics drives transactions to each outcome with franz-go
// producers and checks weir_transactions_total, the open-transaction
// gauges and weir_partition_unstable_records on /metrics.
func TestTransactionMetrics(t *testing.T) {
	s := startServer(t, t.TempDir(), metrics.New())
	if _, err := s.Broker().CreateTopic("tx", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	producer := func(id string, timeout time.Duration) *kgo.Client {
		return client(t, s, kgo.TransactionalID(id), kgo.TransactionTimeout(timeout), kgo.DefaultProduceTopic("tx"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	begin := func(p *kgo.Client, partition int32) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Partition: partition}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	end := func(p *kgo.Client, how kgo.TransactionEndTry) {
		t.Helper()
		if err := p.EndTransaction(ctx, how); err != nil {
			t.Fatal(err)
		}
	}
	outcomes := func(sc scrape) [4]float64 {
		var out [4]float64
		for i, r := range []string{"committed", "aborted", "timed_out", "fenced"} {
			out[i] = sc.value(t, "weir_transactions_total", "result="+r)
		}
		return out
	}
	waitOutcomes := func(want [4]float64) {
		t.Helper()
		var got [4]float64
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if got = outcomes(scrapeMetrics(t, s)); got == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("weir_transactions_total committed/aborted/timed_out/fenced = %v, want %v", got, want)
	}
	waitOutcomes([4]float64{0, 0, 0, 0}) // every result is exported from the start

	a := producer("m-a", time.Minute)
	begin(a, 0)
	end(a, kgo.TryCommit)
	begin(a, 0)
	end(a, kgo.TryAbort)
	waitOutcomes([4]float64{1, 1, 0, 0})

	// Two transactions left open: one times out, one is fenced.
	timesOut := producer("m-timeout", time.Second)
	begin(timesOut, 0)
	fencedOld := producer("m-fenced", time.Minute)
	begin(fencedOld, 1)
	sc := scrapeMetrics(t, s)
	if u := sc.value(t, "weir_partition_unstable_records", "topic=tx", "partition=1"); u != 1 {
		t.Errorf("unstable records of tx/1 with a record in an open transaction = %v, want 1", u)
	}
	waitFor(t, "two open transactions", func() bool {
		sc := scrapeMetrics(t, s)
		return sc.value(t, "weir_transactions_open") == 2 && sc.value(t, "weir_transactions_oldest_open_seconds") > 0
	})

	waitOutcomes([4]float64{1, 1, 1, 0})
	waitFor(t, "tx/0 stable after the timeout", func() bool {
		return scrapeMetrics(t, s).value(t, "weir_partition_unstable_records", "topic=tx", "partition=0") == 0
	})

	fencer := producer("m-fenced", time.Minute)
	begin(fencer, 1) // InitProducerId aborts the old producer's transaction first
	end(fencer, kgo.TryCommit)
	waitOutcomes([4]float64{2, 1, 1, 1})

	waitFor(t, "no open transactions", func() bool {
		sc := scrapeMetrics(t, s)
		return sc.value(t, "weir_transactions_open") == 0 && sc.value(t, "weir_transactions_oldest_open_seconds") == 0 &&
			sc.sum("weir_partition_unstable_records", "topic=tx") == 0
	})
}
