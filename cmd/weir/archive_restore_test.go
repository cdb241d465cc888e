package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
)

// TestArchiveRestore: records over three partitions with timestamps an
// hour apart, some in an aborted transaction; `weir archive restore`
// copies a time range into a new topic record for record (partition,
// key, value, headers, timestamp, order), without the aborted ones.
func TestArchiveRestore(t *testing.T) {
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("src"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "src"); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Millisecond)
	var all []*kgo.Record
	for i := range 30 {
		r := &kgo.Record{Partition: int32(i % 3), Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []kgo.RecordHeader{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}}, Timestamp: base.Add(time.Duration(i) * time.Hour)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("restore-tx"), kgo.DefaultProduceTopic("src"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		if err := tx.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("aborted"), Timestamp: base.Add(15 * time.Hour)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	from, to := base.Add(6*time.Hour), base.Add(24*time.Hour)
	r := c.runLine(fmt.Sprintf("weir archive restore src --to dst --from-time @%d --to-time @%d", from.UnixMilli(), to.UnixMilli()))
	if r.err != nil {
		t.Fatal(r.message())
	}
	if !strings.Contains(r.stdout, "Restored 18 records of src into dst.") {
		t.Fatalf("restore printed:\n%s", r.stdout)
	}
	// The restored records are days old: the new topic keeps them
	// (retention.ms=-1), or the next retention pass would delete them.
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, "dst")
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := rcs.On("dst", nil); err != nil || !hasConfig(rc.Configs, "retention.ms", "-1") {
		t.Fatalf("dst configs: %v %+v", err, rc.Configs)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("dst"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := map[int32][]*kgo.Record{}
	for n := 0; n < 18; {
		fs := rd.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], r); n++ })
	}
	for p := range int32(3) {
		var want []*kgo.Record
		for _, r := range all {
			if r.Partition == p && !r.Timestamp.Before(from) && r.Timestamp.Before(to) {
				want = append(want, r)
			}
		}
		if len(got[p]) != len(want) {
			t.Fatalf("dst/%d holds %d records, want %d", p, len(got[p]), len(want))
		}
		for i, w := range want {
			g := got[p][i]
			if string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) || !g.Timestamp.Equal(w.Timestamp) ||
				len(g.Headers) != 1 || string(g.Headers[0].Value) != string(w.Headers[0].Value) {
				t.Fatalf("dst/%d record %d = %q=%q at %v %v, want %q=%q at %v", p, i, g.Key, g.Value, g.Timestamp, g.Headers, w.Key, w.Value, w.Timestamp)
			}
		}
	}

	for _, tc := range []struct{ line, want string }{
		{"weir archive restore src --to dst", `topic "dst" already exists`},
		{"weir archive restore nope --to x", `topic "nope" does not exist`},
		{"weir archive restore src", "--to NEWTOPIC is required"},
		{"weir archive restore src --to src", "--to must name a new topic"},
		{"weir archive restore src --to y --from-time yesterday", `--from-time "yesterday": want a time`},
	} {
		if r := c.runLine(tc.line); r.err == nil || !strings.Contains(r.message(), tc.want) {
			t.Errorf("%s: %q, want %q", tc.line, r.message(), tc.want)
		}
	}
}

// hasConfig reports whether configs sets name to value.
func hasConfig(configs []kadm.Config, name, value string) bool {
	for _, c := range configs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}
