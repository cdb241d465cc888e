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
	"github.com/weirhq/weir/stream/nexmark"
)

// readTopic reads a topic read_committed from its start to the end
// offsets listed now, partition by partition in offset order. Control
// records are kept only to see the end reached (a transaction's marker is
// often a partition's last offset) and are not returned.
func readTopic(t *testing.T, addr, topic string) []nexmark.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets of %s: %v %v", topic, err, ends.Error())
	}
	var out []nexmark.Record
	ends.Each(func(e kadm.ListedOffset) {
		if e.Offset == 0 {
			return
		}
		pc, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchMaxWait(100*time.Millisecond),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {e.Partition: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		for done := false; !done; {
			fs := pc.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read %s/%d: %v", topic, e.Partition, ctx.Err())
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset < e.Offset && !r.Attrs.IsControl() {
					out = append(out, nexmark.Record{Key: r.Key, Value: r.Value})
				}
				done = done || r.Offset+1 >= e.Offset
			})
		}
	})
	return out
}

// TestNexmarkRunBounded: weir nexmark generate, then weir nexmark run
// --bounded for every query against an embedded broker; each output topic,
// read back, equals the reference output. The runs share the broker and
// go in parallel, each with its own application ID.
func TestNexmarkRunBounded(t *testing.T) {
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	if r := c.runLine("weir nexmark generate --topic nx --events 3000 --partitions 3 --seed 5 --rate 200"); r.err != nil {
		t.Fatalf("%s", r.message())
	}
	events, err := nexmark.Generate(nexmark.Config{Seed: 5, Events: 3000, Partitions: 3, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range nexmark.Queries() {
		t.Run(q, func(t *testing.T) {
			t.Parallel() // each run waits out the group's initial rebalance delay
			r := c.runLine(fmt.Sprintf("weir nexmark run --query %s --input nx --output out-%s --bounded --application-id run-%s", q, q, q))
			if r.err != nil {
				t.Fatalf("%s", r.message())
			}
			if !strings.HasPrefix(r.stdout, "ran "+q+` over "nx" to its end in `) || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("summary: %q", r.stdout)
			}
			want, err := nexmark.Reference(q, events)
			if err != nil {
				t.Fatal(err)
			}
			got := readTopic(t, b.Addr(), "out-"+q)
			if !strings.Contains(r.stdout, fmt.Sprintf("holds %d records\n", len(got))) {
				t.Errorf("summary %q, read %d records", r.stdout, len(got))
			}
			if d := nexmark.Compare(want, got, nexmark.ModeOf(q)); !d.Equal() {
				t.Fatal(d.Format(10))
			}
		})
	}
}

func TestNexmarkRunErrors(t *testing.T) {
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	for _, tc := range []struct{ line, want string }{
		{"weir nexmark run --query q6", `--query "q6": want one of q0, q1, q2, q3, q4, q5, q7, q8`},
		{"weir nexmark run --query q1 --input missing --bounded", `input topic "missing" does not exist`},
		{"weir nexmark run --query q1 --input nx --output nx", `--output "nx" is the input topic`},
		{"weir nexmark run --query q1 --guarantee exactly-once", `--guarantee "exactly-once": want exactly_once or at_least_once`},
		{"weir nexmark run --query q1 --instance-id ''", `--instance-id "": want a non-empty name without spaces`},
	} {
		r := c.runLine(tc.line)
		if r.err == nil || !strings.Contains(r.message(), tc.want) || strings.Contains(r.message(), "\n") {
			t.Errorf("%s: %q, want one line with %q", tc.line, r.message(), tc.want)
		}
	}
}
