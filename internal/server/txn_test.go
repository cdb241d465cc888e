package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/internal/config"
)

// TestTransactionsEndToEnd runs a franz-go transactional producer against
// a node: committed, aborted and committed again; read_committed readers
// see the committed records only, read_uncommitted ones every record,
// before and after a restart, and a new producer of the id fences the old
// epoch.
func TestTransactionsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startNode(t, dir, nil)
	if _, err := s.Broker().CreateTopic("tx", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := client(t, s, kgo.TransactionalID("weir-e2e"), kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	n := 0
	txnOf := func(count int, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range count {
			r := &kgo.Record{Value: fmt.Appendf(nil, "r%d-%v", n, commit), Partition: int32(n % 2)}
			n++
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	txnOf(10, kgo.TryCommit)
	txnOf(10, kgo.TryAbort)
	txnOf(5, kgo.TryCommit)
	_, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()

	checkReads := func(s *Server) {
		t.Helper()
		committed := consumeAll(ctx, t, s, 15, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		for _, r := range committed {
			if !strings.HasSuffix(string(r.Value), "-true") {
				t.Fatalf("read_committed read %q", r.Value)
			}
		}
		consumeAll(ctx, t, s, 25, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	}
	checkReads(s)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = startNode(t, dir, nil)
	checkReads(s)

	p2 := client(t, s, kgo.TransactionalID("weir-e2e"), kgo.DefaultProduceTopic("tx"))
	if err := p2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p2.ProduceSync(ctx, &kgo.Record{Value: []byte("after-restart-true")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if _, epoch2, err := p2.ProducerID(ctx); err != nil || epoch2 <= epoch {
		t.Fatalf("restarted producer epoch %d (before %d), %v", epoch2, epoch, err)
	}
	consumeAll(ctx, t, s, 16, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
}

// consumeAll reads topic tx from the start until want records arrived,
// then polls a little longer to check no more come.
func consumeAll(ctx context.Context, t *testing.T, s *Server, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	c := client(t, s, append([]kgo.Opt{kgo.ConsumeTopics("tx"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	defer c.Close()
	var got []*kgo.Record
	for len(got) < want {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d records of %d: %v", len(got), want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		got = append(got, fs.Records()...)
	}
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	got = append(got, c.PollFetches(pctx).Records()...)
	if len(got) != want {
		t.Fatalf("read %d records, want %d", len(got), want)
	}
	return got
}

// TestTransactionMaxTimeoutConfig: the node's transaction-max-timeout
// bounds what producers may ask for, as transaction.max.timeout.ms does.
func TestTransactionMaxTimeoutConfig(t *testing.T) {
	s := startNode(t, t.TempDir(), func(c *config.Config) { c.TransactionMaxTimeout = time.Minute })
	if _, err := s.Broker().CreateTopic("tx", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		timeout time.Duration
		want    error
	}{{2 * time.Minute, kerr.InvalidTransactionTimeout}, {time.Minute, nil}} {
		p := client(t, s, kgo.TransactionalID(fmt.Sprint("max-", tc.timeout)), kgo.TransactionTimeout(tc.timeout),
			kgo.DefaultProduceTopic("tx"))
		err := p.BeginTransaction()
		if err == nil {
			err = p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
		}
		// franz-go reports the InitProducerId error wrapped in text.
		if (tc.want == nil) != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want.(*kerr.Error).Message) {
			t.Fatalf("timeout %v: produce error %v, want %v", tc.timeout, err, tc.want)
		}
	}
}
