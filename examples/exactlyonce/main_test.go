package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
)

// TestExactlyOnceExample runs the README's example against an embedded
// Weir: a first instance is stopped after its first committed
// transaction (its context cancelled, possibly mid-transaction), a
// second one finishes the input; the output, read read_committed, holds
// every input record once, upper-cased.
func TestExactlyOnceExample(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 3, 1, nil, "orders", "orders-upper"); err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "order-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	var done atomic.Int64
	first, stop := context.WithCancel(ctx)
	err = run(first, b.Addr(), "orders", "orders-upper", func(k int) { done.Add(int64(k)); stop() })
	if err != context.Canceled {
		t.Fatalf("first instance: %v", err)
	}
	second, stop2 := context.WithCancel(ctx)
	defer stop2()
	errc := make(chan error, 1)
	go func() { errc <- run(second, b.Addr(), "orders", "orders-upper", func(k int) { done.Add(int64(k)) }) }()

	rd, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("orders-upper"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := map[string]int{}
	total := 0
	for total < n {
		fs := rd.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("read %d of %d: %v", total, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++; total++ })
	}
	stop2()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("second instance: %v", err)
	}
	for i := range n {
		if k := seen[strings.ToUpper(fmt.Sprintf("order-%d", i))]; k != 1 {
			t.Fatalf("output holds order-%d %d times", i, k)
		}
	}
	if total != n || done.Load() != n {
		t.Fatalf("read %d records, instances committed %d, want %d", total, done.Load(), n)
	}
}
