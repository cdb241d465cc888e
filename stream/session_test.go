package stream_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

// TestSessionWindowsMerge: records within the gap form a session (the gap
// inclusive), a record within the gap of two sessions merges them, and
// sessions close by end once the watermark passes end + gap.
func TestSessionWindowsMerge(t *testing.T) {
	topo, _ := windowCount(stream.Sessions(5*time.Second), stream.OutOfOrderness(10*time.Second))
	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "in", S, S)
	out := streamtest.Output(d, "out", S, I)
	in.Pipe("k", "", at(1))
	in.Pipe("k", "", at(10)) // 9 s later: a second session
	in.Pipe("k", "", at(3))  // [1,3]
	in.Pipe("j", "", at(2))
	in.Pipe("j", "", at(7))  // exactly gap after 2: the same session
	in.Pipe("k", "", at(8))  // within the gap of [1,3] and [10,10]: one session [1,10]
	in.Pipe("x", "", at(25)) // watermark 15: j's [2,7] closes; k's [1,10] may still grow (15 = 10 + gap)
	if got := results(out); !slices.Equal(got, []string{"j@02.000-07.000=2"}) {
		t.Fatalf("after watermark 15: %v", got)
	}
	in.Pipe("x", "", at(25.001)) // watermark past 10 + 5: k closes
	if got := results(out); !slices.Equal(got, []string{"k@01.000-10.000=4"}) {
		t.Fatalf("merged session: %v", got)
	}
	d.EndOfInput()
	if got := results(out); !slices.Equal(got, []string{"x@25.000-25.001=2"}) {
		t.Fatalf("end of input: %v", got)
	}
	// A session's result carries its end as event time.
	recs := d.Records("out")
	if last := recs[len(recs)-1]; !last.Timestamp.Equal(at(25.001)) {
		t.Fatalf("result time %v", last.Timestamp)
	}
}

// TestSessionLateness: a session stays open for the allowed lateness past
// end + gap; records behind the watermark by more than it are late.
func TestSessionLateness(t *testing.T) {
	topo, wg := windowCount(stream.Sessions(5 * time.Second).AllowedLateness(2 * time.Second))
	stream.To(stream.Late(wg), "late", S, S)
	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "in", S, S)
	out := streamtest.Output(d, "out", S, I)
	in.Pipe("k", "a", at(1))
	in.Pipe("j", "b", at(8)) // watermark 8 = 1 + 5 + 2: k's session may still grow
	if got := results(out); len(got) != 0 {
		t.Fatalf("closed early: %v", got)
	}
	in.Pipe("k", "c", at(6))  // 2 s behind the watermark: within lateness, extends [1,6]
	in.Pipe("j", "d", at(14)) // watermark 14 > 6 + 7
	if got := results(out); !slices.Equal(got, []string{"k@01.000-06.000=2"}) {
		t.Fatalf("k: %v", got)
	}
	in.Pipe("k", "e", at(11.999)) // behind the watermark by more than 2 s: late
	if got := streamtest.Output(d, "late", S, S).Values(); !slices.Equal(got, []string{"e"}) || d.LateRecords() != 1 {
		t.Fatalf("late %v, counter %d", got, d.LateRecords())
	}
	d.EndOfInput()
	if got := results(out); !slices.Equal(got, []string{"j@08.000-08.000=1", "j@14.000-14.000=1"}) {
		t.Fatalf("end of input: %v", got)
	}
}

func TestSessionReduceAndAggregate(t *testing.T) {
	topo := stream.NewTopology()
	g := stream.GroupByKey(stream.Source(topo, "in", S, S, stream.OutOfOrderness(time.Minute)), S, S)
	w := stream.WindowBy(g, stream.Sessions(5*time.Second))
	red := stream.ReduceWindows(w, func(a, b string) string { return a + "+" + b })
	stream.To(stream.Map(red, func(k stream.Windowed[string], v string) (string, string) { return k.Key, v }), "reduced", S, S)
	agg := stream.AggregateSessions(w, func() []string { return nil },
		func(_ string, v string, acc []string) []string { return append(acc, v) },
		func(_ string, a, b []string) []string { return append(a, b...) },
		stream.JSON[[]string](), stream.Named("agg"))
	stream.To(stream.Map(agg, func(k stream.Windowed[string], v []string) (string, string) { return k.Key, strings.Join(v, ",") }), "aggregated", S, S)

	d := mustDriver(t, topo, streamtest.Config{})
	in := streamtest.Input(d, "in", S, S)
	in.Pipe("k", "a", at(1))
	in.Pipe("k", "c", at(10))
	in.Pipe("k", "b", at(6)) // joins both: merge(a, c), then b
	d.EndOfInput()
	if got := streamtest.Output(d, "reduced", S, S).Values(); !slices.Equal(got, []string{"a+c+b"}) {
		t.Fatalf("reduced %v", got)
	}
	if got := streamtest.Output(d, "aggregated", S, S).Values(); !slices.Equal(got, []string{"a,c,b"}) {
		t.Fatalf("aggregated %v", got)
	}
}

// TestSessionRestore: open sessions and the watermark come back from the
// changelog: a record replayed into an emitted session is late, an open
// session grows.
func TestSessionRestore(t *testing.T) {
	topo, _ := windowCount(stream.Sessions(5 * time.Second))
	d := mustDriver(t, topo, streamtest.Config{ApplicationID: "app"})
	in := streamtest.Input(d, "in", S, S)
	in.Pipe("k", "", at(1))
	in.Pipe("k", "", at(3))
	in.Pipe("j", "", at(20)) // emits k's [1,3]
	in.Pipe("j", "", at(21))
	if got := results(streamtest.Output(d, "out", S, I)); !slices.Equal(got, []string{"k@01.000-03.000=2"}) {
		t.Fatalf("first engine: %v", got)
	}
	e, err := stream.NewEngine(topo, stream.EngineConfig{ApplicationID: "app", Partitions: func(string) (int32, bool) { return 1, true }})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := e.TaskFor("in", 0)
	if err := e.OpenTask(id); err != nil {
		t.Fatal(err)
	}
	for _, topic := range e.Changelogs(id) {
		for _, r := range d.Records(topic) {
			if err := e.Restore(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	pipe := func(k string, sec float64) {
		if err := e.Process(&kgo.Record{Topic: "in", Key: []byte(k), Value: []byte{}, Timestamp: at(sec)}); err != nil {
			t.Fatal(err)
		}
	}
	pipe("k", 2) // replayed: late
	pipe("j", 24)
	if err := e.EndPartition("in", 0); err != nil {
		t.Fatal(err)
	}
	outs, err := e.Commit()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range outs {
		if r.Topic == "out" {
			n, _ := I.Decode(r.Value)
			got = append(got, string(r.Key)+"="+string(rune('0'+n)))
		}
	}
	if !slices.Equal(got, []string{"j@20.000-24.000=3"}) || e.LateRecords() != 1 {
		t.Fatalf("restored engine: %v, late %d", got, e.LateRecords())
	}
}

func TestSessionMisuse(t *testing.T) {
	topo := stream.NewTopology()
	g := stream.GroupByKey(stream.Source(topo, "in", S, S), S, S)
	stream.AggregateWindows(stream.WindowBy(g, stream.Sessions(time.Second)), func() int64 { return 0 },
		func(string, string, int64) int64 { return 0 }, I)
	if err := topo.Err(); err == nil || !strings.Contains(err.Error(), "AggregateSessions") {
		t.Fatalf("err %v", err)
	}
	topo = stream.NewTopology()
	a, b := stream.Source(topo, "a", S, S), stream.Source(topo, "b", S, S)
	stream.WindowJoin(a, b, stream.Sessions(time.Second), stream.Joined[string, string, string]{Key: S, Left: S, Right: S},
		func(_, l, r string) string { return l + r })
	if err := topo.Err(); err == nil || !strings.Contains(err.Error(), "Sessions") {
		t.Fatalf("err %v", err)
	}
}
