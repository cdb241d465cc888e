package stream_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func mustDriver(t *testing.T, topo *stream.Topology, cfg streamtest.Config) *streamtest.Driver {
	t.Helper()
	d, err := streamtest.New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Err(); err != nil {
			t.Errorf("driver: %v", err)
		}
	})
	return d
}

var S, I = stream.String(), stream.Int64()

func TestStatelessOperators(t *testing.T) {
	topo := stream.NewTopology()
	words := stream.Source(topo, "lines", S, S)
	split := stream.FlatMap(words, func(_ string, line string) []stream.KV[string, string] {
		var out []stream.KV[string, string]
		for _, w := range strings.Fields(line) {
			out = append(out, stream.KV[string, string]{Key: w, Value: w})
		}
		return out
	})
	long := stream.Filter(split, func(k, _ string) bool { return len(k) > 2 })
	lengths := stream.MapValues(long, func(_, v string) int64 { return int64(len(v)) })
	stream.To(lengths, "lengths", S, I)
	upper := stream.Map(long, func(k, v string) (string, string) { return strings.ToUpper(k), v + "!" })
	stream.To(upper, "upper", S, S)
	br := stream.Branch(split,
		func(k, _ string) bool { return strings.HasPrefix(k, "a") },
		func(k, _ string) bool { return len(k) <= 2 })
	stream.To(br[0], "a-words", S, S)
	stream.To(br[1], "short", S, S)
	rekeyed := stream.KeyBy(br[1], func(k, v string) int64 { return int64(len(k)) })
	stream.To(rekeyed, "short-by-len", I, S)

	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "lines", S, S)
	in.Pipe("", "an apple is red", at(1))
	in.Pipe("", "to be", at(2))

	if got := streamtest.Output(d, "lengths", S, I).ReadAll(); len(got) != 2 || got[0].Key != "apple" || got[0].Value != 5 || !got[0].Time.Equal(at(1)) {
		t.Fatalf("lengths: %+v", got)
	}
	if got := streamtest.Output(d, "upper", S, S).Values(); !slices.Equal(got, []string{"apple!", "red!"}) {
		t.Fatalf("upper values: %v", got)
	}
	if got := keys(streamtest.Output(d, "upper", S, S)); len(got) != 0 {
		t.Fatalf("ReadAll twice returned %v", got)
	}
	if got := keys(streamtest.Output(d, "a-words", S, S)); !slices.Equal(got, []string{"an", "apple"}) {
		t.Fatalf("a-words: %v", got)
	}
	if got := keys(streamtest.Output(d, "short", S, S)); !slices.Equal(got, []string{"is", "to", "be"}) {
		t.Fatalf("short (first matching branch only): %v", got)
	}
	if got := streamtest.Output(d, "short-by-len", I, S).ReadAll(); len(got) != 3 || got[0].Key != 2 || got[0].Value != "is" {
		t.Fatalf("short-by-len: %+v", got)
	}
}

func keys[K, V any](o *streamtest.OutputTopic[K, V]) []K {
	var ks []K
	for _, r := range o.ReadAll() {
		ks = append(ks, r.Key)
	}
	return ks
}

func TestCountReduceAggregateTables(t *testing.T) {
	topo := stream.NewTopology()
	src := stream.Source(topo, "clicks", S, I)
	g := stream.GroupByKey(src, S, I)
	stream.To(stream.Count(g, stream.Named("clicks-count")).ToStream(), "counts", S, I)
	stream.To(stream.Reduce(g, func(a, b int64) int64 { return max(a, b) }).ToStream(), "max", S, I)
	type stats struct{ N, Sum int64 }
	stream.To(stream.Aggregate(g, func() stats { return stats{} },
		func(_ string, v int64, s stats) stats { return stats{s.N + 1, s.Sum + v} }, stream.JSON[stats]()).ToStream(),
		"stats", S, stream.JSON[stats]())

	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "clicks", S, I)
	for i, k := range []string{"a", "b", "a", "a"} {
		in.Pipe(k, int64(10-i), at(float64(i)))
	}
	got := streamtest.Output(d, "counts", S, I).ReadAll()
	want := []int64{1, 1, 2, 3}
	for i, r := range got {
		if r.Value != want[i] {
			t.Fatalf("counts: %+v", got)
		}
	}
	if got := streamtest.Output(d, "max", S, I).Values(); !slices.Equal(got, []int64{10, 9, 10, 10}) {
		t.Fatalf("max: %v", got)
	}
	if got := streamtest.Output(d, "stats", S, stream.JSON[stats]()).Values(); got[3] != (stats{3, 10 + 8 + 7}) {
		t.Fatalf("stats: %v", got)
	}
	// The changelog holds each key's latest count (the driver commits
	// after every record, so one entry per update here).
	cl := d.Records("streamtest-clicks-count-changelog")
	if len(cl) != 4 || string(cl[3].Key) != "a" {
		t.Fatalf("changelog: %v", cl)
	}
	if v, _ := I.Decode(cl[3].Value); v != 3 {
		t.Fatalf("changelog last value %d", v)
	}
}

// windowCount builds source → group → window count → sink "out" with
// string keys "key@start-end" → counts.
func windowCount(w stream.Windows, opts ...stream.SourceOption) (*stream.Topology, stream.WindowedGroup[string, string]) {
	topo := stream.NewTopology()
	g := stream.GroupByKey(stream.Source(topo, "in", S, S, opts...), S, S)
	wg := stream.WindowBy(g, w)
	counts := stream.CountWindows(wg)
	named := stream.Map(counts, func(k stream.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s@%s-%s", k.Key, k.Start.Format("05.000"), k.End.Format("05.000")), n
	})
	stream.To(named, "out", S, I)
	return topo, wg
}

func results(o *streamtest.OutputTopic[string, int64]) []string {
	var out []string
	for _, r := range o.ReadAll() {
		out = append(out, fmt.Sprintf("%s=%d", r.Key, r.Value))
	}
	return out
}

func TestTumblingWindows(t *testing.T) {
	topo, _ := windowCount(stream.Tumbling(10 * time.Second))
	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "in", S, S)
	out := streamtest.Output(d, "out", S, I)
	in.Pipe("a", "", at(0))
	in.Pipe("a", "", at(9.999)) // last instant of [0,10)
	in.Pipe("b", "", at(5))
	if got := results(out); len(got) != 0 {
		t.Fatalf("emitted before the window closed: %v", got)
	}
	in.Pipe("a", "", at(10)) // start is inclusive: a new window; watermark 10 closes [0,10)
	if got := results(out); !slices.Equal(got, []string{"a@00.000-10.000=2", "b@00.000-10.000=1"}) {
		t.Fatalf("first window: %v", got)
	}
	// The window result carries event time end − 1 ms.
	in.Pipe("a", "", at(25))
	recs := d.Records("out")
	if last := recs[len(recs)-1]; !last.Timestamp.Equal(at(19.999)) {
		t.Fatalf("result time %v", last.Timestamp)
	}
	if got := results(out); !slices.Equal(got, []string{"a@10.000-20.000=1"}) {
		t.Fatalf("second window: %v", got)
	}
}

func TestHoppingWindowBoundaries(t *testing.T) {
	topo, _ := windowCount(stream.Hopping(10*time.Second, 5*time.Second))
	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "in", S, S)
	out := streamtest.Output(d, "out", S, I)
	in.Pipe("k", "", at(4.999)) // windows [-5,5) and [0,10)
	in.Pipe("k", "", at(5))     // [0,10) and [5,15)
	in.Pipe("k", "", at(9))     // [0,10) and [5,15)
	d.EndOfInput()
	want := []string{"k@55.000-05.000=1", "k@00.000-10.000=3", "k@05.000-15.000=2"}
	if got := results(out); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestLatenessAndSideOutput(t *testing.T) {
	topo, wg := windowCount(stream.Tumbling(10*time.Second).AllowedLateness(2*time.Second),
		stream.OutOfOrderness(3*time.Second))
	stream.To(stream.Late(wg), "late", S, S)
	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "in", S, S)
	out := streamtest.Output(d, "out", S, I)
	late := streamtest.Output(d, "late", S, S)

	in.Pipe("k", "a", at(1))
	in.Pipe("k", "b", at(13)) // watermark 10: [0,10) stays open for lateness 2
	in.Pipe("k", "c", at(8))  // out of order, within lateness: counts
	if got := results(out); len(got) != 0 {
		t.Fatalf("closed too early: %v", got)
	}
	in.Pipe("k", "d", at(15)) // watermark 12 = end + lateness: closes [0,10)
	if got := results(out); !slices.Equal(got, []string{"k@00.000-10.000=2"}) {
		t.Fatalf("window: %v", got)
	}
	in.Pipe("k", "e", at(9.5)) // too late: side output, counted
	in.Pipe("k", "f", at(11))  // [10,20) still open: counts
	if got := late.Values(); !slices.Equal(got, []string{"e"}) || d.LateRecords() != 1 {
		t.Fatalf("late: %v, counter %d", got, d.LateRecords())
	}
	d.EndOfInput() // flushes every open window
	if got := results(out); !slices.Equal(got, []string{"k@10.000-20.000=3"}) {
		t.Fatalf("after end of input: %v", got)
	}
}

func TestEventTimeExtractor(t *testing.T) {
	topo, _ := windowCount(stream.Tumbling(time.Minute),
		stream.EventTime(func(_ string, v string, _ time.Time) time.Time {
			ts, _ := time.Parse(time.RFC3339, v)
			return ts
		}))
	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "in", S, S)
	in.Pipe("k", "2024-01-01T00:00:30Z", at(500)) // record time ignored
	in.Pipe("k", "2024-01-01T00:01:30Z", at(0))
	if got := results(streamtest.Output(d, "out", S, I)); !slices.Equal(got, []string{"k@00.000-00.000=1"}) {
		t.Fatalf("got %v", got)
	}
	// A mistyped extractor is a build error, not a panic at run time.
	bad := stream.NewTopology()
	stream.To(stream.Source(bad, "in", S, I, stream.EventTime(func(string, string, time.Time) time.Time { return t0 })), "x", S, I)
	if _, err := streamtest.New(bad, streamtest.Config{}); err == nil || !strings.Contains(err.Error(), "EventTime") {
		t.Fatalf("mistyped extractor: %v", err)
	}
}

// TestWatermarkIsMinimumOverPartitionsAndIdleness: a task reading two
// topics (merged, partition 0 of each) follows the slower partition,
// unless it is idle.
func TestWatermarkIsMinimumOverPartitionsAndIdleness(t *testing.T) {
	topo := stream.NewTopology()
	idle := stream.IdleTimeout(time.Minute)
	merged := stream.Merge(stream.Source(topo, "a", S, S, idle), stream.Source(topo, "b", S, S, idle))
	counts := stream.CountWindows(stream.WindowBy(stream.GroupByKey(merged, S, S), stream.Tumbling(10*time.Second)))
	stream.To(stream.Map(counts, func(k stream.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s@%s", k.Key, k.Start.Format("05")), n
	}), "out", S, I)
	d := mustDriver(t, topo, streamtest.Config{})
	out := streamtest.Output(d, "out", S, I)
	a, b := streamtest.Input(d, "a", S, S), streamtest.Input(d, "b", S, S)
	a.Pipe("k", "", at(1))
	d.Advance(30 * time.Second)
	a.Pipe("k", "", at(30))
	if got := results(out); len(got) != 0 {
		t.Fatalf("a partition with no record yet must hold the watermark: %v", got)
	}
	d.Advance(29 * time.Second)
	if got := results(out); len(got) != 0 {
		t.Fatalf("not idle yet: %v", got)
	}
	d.Advance(time.Second) // b idle for a minute, a active: the watermark follows a
	if got := results(out); !slices.Equal(got, []string{"k@00=1"}) {
		t.Fatalf("after idleness: %v", got)
	}
	// An idle partition that wakes up holds the watermark again (which
	// never goes back).
	b.Pipe("k", "", at(31))
	a.Pipe("k", "", at(45))
	if got := results(out); len(got) != 0 {
		t.Fatalf("woken partition must hold the watermark: %v", got)
	}
	b.Pipe("k", "", at(41))
	if got := results(out); !slices.Equal(got, []string{"k@30=2"}) {
		t.Fatalf("min watermark 41: %v", got)
	}
	if wm := d.Engine().Watermark(stream.TaskID{}); wm != at(41).UnixMilli() {
		t.Fatalf("task watermark %d", wm)
	}
}

func TestRepartitionOnKeyChange(t *testing.T) {
	topo := stream.NewTopology()
	// Page views keyed by user; count per page: the key changes, so the
	// count reads a repartition topic.
	views := stream.Source(topo, "views", S, S)
	byPage := stream.KeyBy(views, func(_, page string) string { return page })
	g := stream.GroupByKey(byPage, S, S, stream.Named("by-page"))
	counts := stream.CountWindows(stream.WindowBy(g, stream.Tumbling(time.Minute)), stream.Named("page-counts"))
	stream.To(stream.Map(counts, func(k stream.Windowed[string], n int64) (string, int64) { return k.Key, n }), "page-counts", S, I)

	d := mustDriver(t, topo, streamtest.Config{ApplicationID: "app", Partitions: map[string]int32{"views": 3}})
	in := streamtest.Input(d, "views", S, S)
	users := []string{"ann", "bob", "cid", "dan", "eve", "fay"}
	for i, u := range users {
		in.Pipe(u, []string{"/a", "/b"}[i%2], at(float64(i)))
		in.Pipe(u, "/a", at(float64(i)+0.5))
	}
	d.EndOfInput()
	got := map[string]int64{}
	for _, r := range streamtest.Output(d, "page-counts", S, I).ReadAll() {
		got[r.Key] += r.Value
		if want := stream.KafkaPartition([]byte(r.Key), 3); r.Partition != want {
			t.Errorf("%s in partition %d, want %d", r.Key, r.Partition, want)
		}
	}
	if got["/a"] != 9 || got["/b"] != 3 || len(got) != 2 {
		t.Fatalf("counts %v", got)
	}
	rp := d.Records("app-by-page-repartition")
	data := 0
	for _, r := range rp {
		if r.Value != nil {
			data++
			if want := stream.KafkaPartition(r.Key, 3); r.Partition != want {
				t.Fatalf("repartition record %s in %d, want %d", r.Key, r.Partition, want)
			}
		}
	}
	if data != 12 {
		t.Fatalf("%d records through the repartition topic, want 12", data)
	}
	if len(d.Records("app-page-counts-changelog")) == 0 {
		t.Fatal("no changelog")
	}
	topics := d.Engine().Topics()
	if topics.Repartition["app-by-page-repartition"] != 3 || topics.Changelogs["app-page-counts-changelog"] != 3 {
		t.Fatalf("topics %+v", topics)
	}
}

func TestCoPartitioningChecked(t *testing.T) {
	topo := stream.NewTopology()
	a := stream.Source(topo, "a", S, S)
	b := stream.Source(topo, "b", S, S)
	stream.To(stream.Merge(a, b), "ab", S, S)
	_, err := streamtest.New(topo, streamtest.Config{Partitions: map[string]int32{"a": 2, "b": 3}})
	if err == nil || !strings.Contains(err.Error(), "co-partitioned") {
		t.Fatalf("got %v", err)
	}
	d := mustDriver(t, topo, streamtest.Config{Partitions: map[string]int32{"a": 2, "b": 2}})
	streamtest.Input(d, "a", S, S).Pipe("x", "1", at(0))
	streamtest.Input(d, "b", S, S).Pipe("y", "2", at(0))
	if got := streamtest.Output(d, "ab", S, S).Values(); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("merge: %v", got)
	}
}

func TestWindowedReduceAndAggregate(t *testing.T) {
	topo := stream.NewTopology()
	w := stream.WindowBy(stream.GroupByKey(stream.Source(topo, "in", S, I), S, I), stream.Tumbling(10*time.Second))
	stream.To(stream.Map(stream.ReduceWindows(w, func(a, b int64) int64 { return a + b }),
		func(k stream.Windowed[string], v int64) (string, int64) { return k.Key, v }), "sum", S, I)
	stream.To(stream.Map(stream.AggregateWindows(w, func() []int64 { return nil },
		func(_ string, v int64, acc []int64) []int64 { return append(acc, v) }, stream.JSON[[]int64]()),
		func(k stream.Windowed[string], v []int64) (string, []int64) { return k.Key, v }), "all", S, stream.JSON[[]int64]())
	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "in", S, I)
	in.Pipe("k", 1, at(1))
	in.Pipe("k", 2, at(2))
	in.Pipe("k", 4, at(12))
	d.EndOfInput()
	if got := streamtest.Output(d, "sum", S, I).Values(); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("sum %v", got)
	}
	if got := streamtest.Output(d, "all", S, stream.JSON[[]int64]()).Values(); len(got) != 2 || !slices.Equal(got[0], []int64{1, 2}) {
		t.Fatalf("all %v", got)
	}
}

func TestBadWindowsAndNames(t *testing.T) {
	topo := stream.NewTopology()
	g := stream.GroupByKey(stream.Source(topo, "in", S, S), S, S)
	stream.CountWindows(stream.WindowBy(g, stream.Hopping(time.Second, 2*time.Second)))
	stream.Count(g, stream.Named("x"))
	stream.Count(g, stream.Named("x"))
	err := topo.Err()
	if err == nil || !strings.Contains(err.Error(), "advance") || !strings.Contains(err.Error(), `"x" used twice`) {
		t.Fatalf("got %v", err)
	}
}

func TestDriverMetrics(t *testing.T) {
	topo, wg := windowCount(stream.Tumbling(10 * time.Second))
	stream.To(stream.Late(wg), "late", S, S)
	reg := prometheus.NewRegistry()
	d := mustDriver(t, topo, streamtest.Config{Registerer: reg, Start: at(60)})
	in := streamtest.Input(d, "in", S, S)
	in.Pipe("k", "", at(20))
	in.Pipe("k", "", at(5)) // late
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if got["weir_stream_late_records_total"] != 1 || got["weir_stream_watermark_lag_seconds"] != 40 || got["weir_stream_operator_records_total"] == 0 {
		t.Fatalf("metrics %v", got)
	}
}
