// Command exactlyonce is the README's exactly-once example: it copies
// every record of one topic to another, upper-cased, with franz-go's
// GroupTransactSession, so each poll's output records and the group's
// input offsets commit in one Kafka transaction. Killed at any moment and
// restarted, it neither loses nor repeats a record in the output as a
// read_committed consumer sees it. It works against Weir or any Kafka
// cluster:
//
//	go run ./examples/exactlyonce -brokers 127.0.0.1:9092 -in orders -out orders-upper
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap broker")
	in := flag.String("in", "orders", "topic to read")
	out := flag.String("out", "orders-upper", "topic to write")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *brokers, *in, *out, nil); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "exactlyonce:", err)
		os.Exit(1)
	}
}

// run copies in to out until ctx ends; committed, when set, is called
// after each committed transaction with its record count.
func run(ctx context.Context, brokers, in, out string, committed func(n int)) error {
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(brokers),
		kgo.TransactionalID("exactlyonce-"+in), // one per input: a restart fences the old instance
		kgo.ConsumerGroup("exactlyonce-"+in),
		kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), // read only committed input
		kgo.DefaultProduceTopic(out),
	)
	if err != nil {
		return err
	}
	defer sess.Close()
	for {
		fetches := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fetches.Err(); err != nil {
			return err
		}
		if err := sess.Begin(); err != nil {
			return err
		}
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: bytes.ToUpper(r.Value)}, nil)
		})
		// Commit the output and the input offsets together; on any error
		// the transaction aborts and the records are polled again.
		ok, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			return err
		}
		if ok && committed != nil {
			committed(n)
		}
	}
}
