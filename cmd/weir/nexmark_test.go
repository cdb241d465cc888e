package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
	"github.com/weirhq/weir/stream/nexmark"
)

// readAll reads n records from the start of topic's partitions.
func readAll(t *testing.T, addr, topic string, parts int32, n int) map[int32][][]byte {
	t.Helper()
	assign := map[int32]kgo.Offset{}
	for p := range parts {
		assign[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[int32][][]byte{}
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", got, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Key != nil {
				t.Errorf("record with key %q", r.Key)
			}
			out[r.Partition] = append(out[r.Partition], r.Value)
			got++
		})
	}
	return out
}

// TestNexmarkGenerate writes a run to an embedded broker and reads back
// exactly the generator's events, round robin over the partitions.
func TestNexmarkGenerate(t *testing.T) {
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	const n = 3000
	r := c.runLine("weir nexmark generate --topic nx --events 3000 --partitions 3 --seed 4 --rate 1000")
	if r.err != nil {
		t.Fatalf("%s", r.message())
	}
	if !strings.HasPrefix(r.stdout, `produced 3000 NEXMark events (60 persons, 180 auctions, 2760 bids; `) ||
		!strings.Contains(r.stdout, `to new topic "nx" (3 partitions)`) ||
		!strings.Contains(r.stdout, "seed 4, event time 2025-01-01 00:00:00.000 to 2025-01-01 00:00:02.999\n") ||
		strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("summary: %q", r.stdout)
	}
	got := readAll(t, b.Addr(), "nx", 3, n)
	want, err := nexmark.Generate(nexmark.Config{Seed: 4, Events: n, Partitions: 3, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	next := map[int32]int{}
	for i, ev := range want {
		p := int32(i % 3)
		vals := got[p]
		if next[p] >= len(vals) {
			t.Fatalf("partition %d has %d records; event %d missing", p, len(vals), i)
		}
		v := vals[next[p]]
		next[p]++
		var dec nexmark.Event
		if err := nexmark.Unmarshal(v, &dec); err != nil {
			t.Fatalf("partition %d: %v: %s", p, err, v)
		}
		wb, _ := nexmark.Marshal(&ev)
		if !bytes.Equal(v, wb) {
			t.Fatalf("event %d (partition %d):\n got %s\nwant %s", i, p, v, wb)
		}
	}
	for p, vals := range got {
		if next[p] != len(vals) {
			t.Fatalf("partition %d has %d records, want %d", p, len(vals), next[p])
		}
	}

	// Again into the existing topic, as JSON: its partitions are kept.
	r = c.runLine("weir nexmark generate -t nx -n 10 --in-order --format json")
	if r.err != nil {
		t.Fatalf("%s", r.message())
	}
	var s nexmarkSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Events != 10 || s.Partitions != 3 || s.Created || s.Persons != 1 || s.Bids != 6 {
		t.Fatalf("json summary %q: %v", r.stdout, err)
	}
}

func TestNexmarkGenerateErrors(t *testing.T) {
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	if r := c.runLine("weir nexmark generate -t two --events 5 --partitions 2"); r.err != nil {
		t.Fatal(r.message())
	}
	for line, want := range map[string]string{
		"weir nexmark generate":                                  `weir: required flag(s) "events" not set`,
		"weir nexmark generate --events 0":                       "weir: --events 0: want at least 1",
		"weir nexmark generate --events 5 --rate 0":              "weir: --rate 0: want at least 1 event/s",
		"weir nexmark generate --events 5 --partitions 0":        "weir: --partitions 0: want at least 1",
		"weir nexmark generate --events 5 --max-delay 0":         "weir: --max-delay 0: use --in-order for no delays",
		"weir nexmark generate --events 5 --base-time yesterday": `weir: --base-time "yesterday": want yyyy-MM-dd HH:mm:ss.SSS (UTC)`,
		"weir nexmark generate -t two --events 5 --partitions 3": `weir: topic "two" exists with 2 partitions, not the 3 of --partitions; use another --topic or delete it`,
		"weir nexmark generate --events 5 -b " + closedPort(t):   "weir: cannot reach broker at",
		"weir nexmark generate --events 5 --max-delay 2h":        "weir: nexmark: max delay 2h0m0s: want 0 to 1h",
	} {
		r := c.runLine(line)
		if r.err == nil || !strings.HasPrefix(r.message(), want) || strings.Contains(r.message(), "\n") {
			t.Errorf("%s: %q, want %q", line, r.message(), want)
		}
	}
}
