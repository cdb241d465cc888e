package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
)

// txnVolatile normalises the times the txn commands print.
var txnVolatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`), "<time>"},
	{regexp.MustCompile(`(?m)^(DURATION\s+)\S+$`), "${1}<duration>"},
	{regexp.MustCompile(`("(start_time_ms|duration_ms|last_timestamp)": )\d+`), "${1}<ms>"},
}

func normalizeTxn(s string) string {
	for _, v := range txnVolatile {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	return s
}

// readCommittedValues reads topic from the start as a read_committed consumer
// until want values arrived (or, want 0, for a moment), and returns the
// values read.
func readCommittedValues(t *testing.T, addr, topic string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	if want == 0 {
		deadline = time.Now().Add(time.Second)
	}
	for time.Now().Before(deadline) && (want == 0 || len(got) < want) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestTxnHangingAbort: a transactional producer that produces and is then
// abandoned (a long timeout: the coordinator will not abort it soon)
// holds read_committed consumers back; weir txn finds it and aborts it on
// the partition, the consumers read on, and its records are never read
// committed. A second hanging transaction is aborted by producer id, and
// a stale epoch is refused once a new producer fenced the old one.
func TestTxnHangingAbort(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c, n := newCLI(t, b), newNormalizer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r := c.runLine("weir topic create hang"); r.err != nil {
		t.Fatal(r.err)
	}
	if r := c.runLine(`printf 'before\n' | weir produce hang`); r.err != nil {
		t.Fatal(r.err)
	}
	hanger, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("hanger"),
		kgo.TransactionTimeout(10*time.Minute), kgo.DefaultProduceTopic("hang"))
	if err != nil {
		t.Fatal(err)
	}
	defer hanger.Close()
	if err := hanger.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := hanger.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "doomed-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Abandoned: no EndTransaction. A committed record lands behind it.
	if r := c.runLine(`printf 'after\n' | weir produce hang`); r.err != nil {
		t.Fatal(r.err)
	}
	if got := readCommittedValues(t, b.Addr(), "hang", 0); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("read_committed behind the hanging transaction read %q, want only before", got)
	}
	pid, epoch, err := hanger.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	got := c.transcript(
		"weir txn list",
		"weir txn list --state Ongoing --format json",
		"weir txn describe hanger",
		"weir txn describe hanger --format json",
		"weir txn producers hang",
		"weir consume hang -e",
		"weir txn abort --topic hang --partition 0 --start-offset 2",
		"weir txn abort --topic hang --partition 0 --start-offset 1",
		"weir consume hang -e",
		"weir txn producers hang --format json",
		"weir txn abort --topic hang --partition 0 --start-offset 1",
	)
	if want := []string{"before", "after"}; !slices.Equal(readCommittedValues(t, b.Addr(), "hang", 2), want) {
		t.Fatalf("read_committed after the abort: want %q", want)
	}

	// The abandoned producer writes again: a new transaction on the
	// partition, aborted by producer id and epoch.
	if err := hanger.ProduceSync(ctx, &kgo.Record{Value: []byte("doomed-4")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	byID := fmt.Sprintf("weir txn abort --topic hang --partition 0 --producer-id %d --producer-epoch %d --coordinator-epoch 0", pid, epoch)
	got += c.transcript("weir txn producers hang", byID, "weir consume hang -e")

	// A new producer of the id fences the old one: the coordinator aborts
	// its transaction with a bumped epoch, so the old epoch is stale.
	fencer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("hanger"), kgo.DefaultProduceTopic("hang"))
	if err != nil {
		t.Fatal(err)
	}
	defer fencer.Close()
	if err := fencer.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := fencer.ProduceSync(ctx, &kgo.Record{Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := fencer.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got += c.transcript(
		byID,
		"weir txn describe hanger",
		// usage errors
		"weir txn abort --topic nope --partition 0 --start-offset 1",
		"weir txn abort --topic hang --partition 3 --start-offset 1",
		"weir txn abort --topic hang --partition 0",
		"weir txn abort --topic hang --partition 0 --start-offset 1 --producer-id 5",
		"weir txn abort --topic hang --partition 0 --producer-id 5",
		"weir txn abort --topic hang --start-offset 1",
		"weir txn describe nobody",
		"weir txn list --state Bogus",
		"weir txn producers nope",
	)
	checkGolden(t, "txn", normalizeTxn(n.apply(got)))

	final := readCommittedValues(t, b.Addr(), "hang", 3)
	if want := []string{"before", "after", "committed"}; !slices.Equal(final, want) {
		t.Fatalf("read_committed at the end read %q, want %q", final, want)
	}
	for _, v := range final {
		if strings.HasPrefix(v, "doomed") {
			t.Fatalf("read_committed read aborted record %q", v)
		}
	}
}
