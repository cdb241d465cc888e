package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsSurviveKill: against the built binary, a franz-go
// transactional producer commits one transaction and leaves a second open
// when the broker is killed (SIGKILL). After the restart the coordinator
// recovers the open transaction and aborts it at its timeout; read_committed
// readers — franz-go and kcat (librdkafka) — see exactly the committed
// records, and the last stable offset catches up with the log end.
func TestTransactionsSurviveKill(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	adm := kadm.NewClient(extKgoClient(t, w))
	if _, err := adm.CreateTopic(ctx(t), 2, 1, nil, "txe2e"); err != nil {
		t.Fatal(err)
	}
	p := extKgoClient(t, w, kgo.TransactionalID("e2e-kill"), kgo.TransactionTimeout(3*time.Second),
		kgo.DefaultProduceTopic("txe2e"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			r := &kgo.Record{Value: fmt.Appendf(nil, "%s-%d", prefix, i), Partition: int32(i % 2)}
			if err := p.ProduceSync(ctx(t), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce("committed", 6)
	if err := p.EndTransaction(ctx(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce("open", 4) // durable (acks=all), never committed
	w.Restart(true)    // kill -9 with the transaction open

	// The recovered coordinator aborts the open transaction at its
	// timeout; until then read_committed readers wait at the LSO.
	deadline := time.Now().Add(30 * time.Second)
	for {
		committed, err := adm.ListCommittedOffsets(ctx(t), "txe2e")
		if err != nil {
			t.Fatal(err)
		}
		ends, err := adm.ListEndOffsets(ctx(t), "txe2e")
		if err != nil {
			t.Fatal(err)
		}
		settled := true
		ends.Each(func(o kadm.ListedOffset) {
			c, _ := committed.Lookup(o.Topic, o.Partition)
			settled = settled && c.Offset == o.Offset
		})
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the open transaction was not aborted within 30s of the restart:\n%s", extLogTail(w, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}

	c := extKgoClient(t, w, kgo.ConsumeTopics("txe2e"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	for len(got) < 6 {
		fs := c.PollFetches(ctx(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for _, v := range got {
		if !strings.HasPrefix(v, "committed-") {
			t.Fatalf("read_committed franz-go read %q", v)
		}
	}
	// kcat reads each partition to its end with read_committed.
	var kc []string
	for _, part := range []string{"0", "1"} {
		out := runKcat(t, w, nil, "-C", "-t", "txe2e", "-p", part, "-o", "beginning", "-e", "-q",
			"-X", "isolation.level=read_committed", "-f", "%s\n")
		for _, l := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
			if len(l) > 0 {
				kc = append(kc, string(l))
			}
		}
	}
	if len(kc) != 6 {
		t.Fatalf("kcat read_committed read %d records %q, want the 6 committed", len(kc), kc)
	}
	for _, v := range kc {
		if !strings.HasPrefix(v, "committed-") {
			t.Fatalf("kcat read_committed read %q", v)
		}
	}
	// The producer's id is usable again: a new producer fences the old epoch
	// and commits.
	p2 := extKgoClient(t, w, kgo.TransactionalID("e2e-kill"), kgo.DefaultProduceTopic("txe2e"))
	if err := p2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p2.ProduceSync(ctx(t), &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p2.EndTransaction(ctx(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}
