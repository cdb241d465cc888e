package queries_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/nexmark"
	"github.com/weirhq/weir/stream/nexmark/queries"
	"github.com/weirhq/weir/stream/streamtest"
)

// runDriver runs query over events in streamtest, each event on the
// partition the generator gave it, and returns the output topic's records.
func runDriver(t testing.TB, query string, events []nexmark.Event, parts []int32, partitions int32) []nexmark.Record {
	t.Helper()
	topo := stream.NewTopology()
	if err := queries.Build(topo, query, "nexmark", "out"); err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(topo, streamtest.Config{ApplicationID: "nx-" + query, Partitions: map[string]int32{"nexmark": partitions}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range events {
		v, err := nexmark.Marshal(&events[i])
		if err != nil {
			t.Fatal(err)
		}
		d.PipeRecord(&kgo.Record{Topic: "nexmark", Partition: parts[i], Value: v})
	}
	d.EndOfInput()
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if n := d.LateRecords(); n != 0 {
		t.Errorf("%d late records", n)
	}
	var got []nexmark.Record
	for _, r := range d.Records("out") {
		got = append(got, nexmark.Record{Key: r.Key, Value: r.Value})
	}
	return got
}

// generate returns a run's events in emission order with their partitions.
func generate(t testing.TB, c nexmark.Config) ([]nexmark.Event, []int32) {
	t.Helper()
	g, err := nexmark.NewGenerator(c)
	if err != nil {
		t.Fatal(err)
	}
	var evs []nexmark.Event
	var parts []int32
	for {
		e, p, ok := g.Next()
		if !ok {
			return evs, parts
		}
		evs = append(evs, e)
		parts = append(parts, p)
	}
}

// TestQueriesMatchReference runs every query over generated input (out of
// order within 3 s, spread over partitions) and compares its whole output
// with the reference.
func TestQueriesMatchReference(t *testing.T) {
	configs := []nexmark.Config{
		// 20 s of event time: several windows of every size; auctions
		// expire after seconds, so q4's timers fire mid-run.
		{Seed: 1, Events: 4000, Rate: 200, Partitions: 3},
		// The default rate: one window, hot keys, many bids per auction.
		{Seed: 2, Events: 3000, Partitions: 2},
	}
	for _, c := range configs {
		events, parts := generate(t, c)
		for _, q := range queries.Names() {
			t.Run(fmt.Sprintf("%s/seed%d", q, c.Seed), func(t *testing.T) {
				want, err := nexmark.Reference(q, events)
				if err != nil {
					t.Fatal(err)
				}
				if len(want) == 0 {
					t.Fatalf("reference output of %s is empty: the input does not exercise it", q)
				}
				got := runDriver(t, q, events, parts, c.Partitions)
				if d := nexmark.Compare(want, got, nexmark.ModeOf(q)); !d.Equal() {
					t.Fatal(d.Format(10))
				}
			})
		}
	}
}

func TestBuildUnknownQuery(t *testing.T) {
	if err := queries.Build(stream.NewTopology(), "q6", "in", "out"); err == nil {
		t.Fatal("q6 accepted")
	}
}
