package queries_test

import (
	"flag"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/nexmark"
	"github.com/weirhq/weir/stream/nexmark/queries"
)

var benchEvents = flag.Int("nexmark.events", 200_000, "events per BenchmarkQuery iteration")

// BenchmarkQuery measures each query's processing core on one goroutine,
// with no broker: an in-process generator's events, marshalled to JSON
// before the timer starts, go one record at a time into a stream.Engine
// (one task per sub-topology, one input partition), which decodes them
// (nexmark.Unmarshal), runs the operators, keeps state in memory stores
// and encodes the outputs; repartition records are fed straight back in,
// a commit (changelog records, watermark markers) follows every 10,000
// input events, and the output and changelog records are counted and
// dropped. The end of input closes every window. events/s is input events
// per second of that goroutine: per core.
func BenchmarkQuery(b *testing.B) {
	evs, err := nexmark.Generate(nexmark.Config{Seed: 1, Events: int64(*benchEvents)})
	if err != nil {
		b.Fatal(err)
	}
	values := make([][]byte, len(evs))
	for i := range evs {
		if values[i], err = nexmark.Marshal(&evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range queries.Names() {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			outs := 0
			for b.Loop() {
				outs = runEngine(b, q, values)
			}
			b.ReportMetric(float64(len(values))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(outs), "outputs")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// runEngine processes the values through a fresh engine running query
// and returns the number of output records.
func runEngine(b *testing.B, query string, values [][]byte) int {
	topo := stream.NewTopology()
	if err := queries.Build(topo, query, "nexmark", "out"); err != nil {
		b.Fatal(err)
	}
	e, err := stream.NewEngine(topo, stream.EngineConfig{ApplicationID: "bench",
		Partitions: func(string) (int32, bool) { return 1, true }})
	if err != nil {
		b.Fatal(err)
	}
	ts := e.Topics()
	for sub := 0; ; sub++ {
		if e.OpenTask(stream.TaskID{Subtopology: sub}) != nil {
			break
		}
	}
	outs := 0
	var queue []*kgo.Record
	// drain processes what the engine produced on repartition topics until
	// nothing is left, counting the outputs.
	drain := func(recs []*kgo.Record) {
		queue = append(queue[:0], recs...)
		for len(queue) > 0 {
			r := queue[0]
			queue = queue[1:]
			if _, ok := ts.Repartition[r.Topic]; ok {
				if err := e.Process(r); err != nil {
					b.Fatal(err)
				}
				queue = append(queue, e.Drain()...)
			} else if r.Topic == "out" {
				outs++
			}
		}
	}
	commit := func() {
		recs, err := e.Commit()
		if err != nil {
			b.Fatal(err)
		}
		drain(recs)
	}
	in := &kgo.Record{Topic: "nexmark"}
	for i, v := range values {
		in.Value, in.Offset = v, int64(i)
		if err := e.Process(in); err != nil {
			b.Fatal(err)
		}
		if recs := e.Drain(); len(recs) > 0 {
			drain(recs)
		}
		if i%10_000 == 9_999 {
			commit()
		}
	}
	if err := e.EndPartition("nexmark", 0); err != nil {
		b.Fatal(err)
	}
	for range 4 { // end markers travel one repartition hop per commit
		commit()
	}
	return outs
}
