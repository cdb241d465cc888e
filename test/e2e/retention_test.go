package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRetentionIsPrompt is issue 16's user scenario against the binary
// with default settings: a topic with retention.ms=2000 and segment.ms=500
// loses records written once and never followed within about 10 s (the
// 5 s retention check rolls the idle segment and deletes it once its
// newest record is 2 s old), where Kafka's 5-minute check, rolling only on
// append, keeps them. ListOffsets earliest moves past them and a consumer
// from the start never sees them.
func TestRetentionIsPrompt(t *testing.T) {
	w := StartWeir(t, "")
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr), kgo.DefaultProduceTopic("short-lived"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ptr := func(s string) *string { return &s }
	res, err := adm.CreateTopic(ctx(t), 1, 1, map[string]*string{"retention.ms": ptr("2000"), "segment.ms": ptr("500")}, "short-lived")
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	// The compaction settings are accepted alongside (issue 16 asks for
	// delete.retention.ms to be settable) and reported back as set.
	cres, err := adm.CreateTopic(ctx(t), 1, 1, map[string]*string{"cleanup.policy": ptr("compact,delete"),
		"delete.retention.ms": ptr("1000"), "min.cleanable.dirty.ratio": ptr("0.1")}, "compacted")
	if err == nil {
		err = cres.Err
	}
	if err != nil {
		t.Fatalf("create topic with delete.retention.ms: %v", err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx(t), "compacted")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("compacted", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe compacted: %v %v", err, rc.Err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			got[c.Key] = c.MaybeValue()
		}
	}
	if got["delete.retention.ms"] != "1000" || got["min.cleanable.dirty.ratio"] != "0.1" || got["cleanup.policy"] != "compact,delete" {
		t.Fatalf("compacted topic's configs %v", got)
	}

	const n = 20
	for i := range n {
		if err := cl.ProduceSync(ctx(t), kgo.StringRecord(fmt.Sprintf("old-%d", i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	written := time.Now()
	var start int64
	for {
		offs, err := adm.ListStartOffsets(ctx(t), "short-lived")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup("short-lived", 0)
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if start = o.Offset; start >= n {
			break
		}
		if time.Since(written) > 15*time.Second {
			t.Fatalf("log start offset %d %v after writing %d records, want %d\n%s", start, time.Since(written), n, n, w.Logs())
		}
		time.Sleep(200 * time.Millisecond) // another process's clock: nothing to wait on but time
	}
	t.Logf("records deleted %v after writing", time.Since(written).Round(100*time.Millisecond))
	if start != n {
		t.Fatalf("log start offset %d, want %d (the log end)", start, n)
	}

	// A consumer from the start sees only what comes after.
	if err := cl.ProduceSync(ctx(t), kgo.StringRecord("new")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(w.Addr), kgo.ConsumeTopics("short-lived"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	c, cancel := context.WithTimeout(ctx(t), 20*time.Second)
	defer cancel()
	for {
		fs := cons.PollFetches(c)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if r := recs[0]; r.Offset != n || string(r.Value) != "new" {
			t.Fatalf("first record from the start: offset %d value %q, want %d %q", r.Offset, r.Value, n, "new")
		}
		return
	}
}
