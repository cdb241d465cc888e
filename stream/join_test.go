package stream_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

// TestJoinEveryPairOnce: an unwindowed join pairs every left and right
// record of a key once, whichever side comes first, across a repartition.
func TestJoinEveryPairOnce(t *testing.T) {
	topo := stream.NewTopology()
	users := stream.Source(topo, "users", S, S) // id → name
	orders := stream.Source(topo, "orders", S, S)
	byUser := stream.KeyBy(orders, func(_, v string) string { return v[:1] }) // order "aX" is user a's
	j := stream.Join(users, byUser, stream.Joined[string, string, string]{Key: S, Left: S, Right: S},
		func(k, name, order string) string { return k + ":" + name + "/" + order }, stream.Named("uo"))
	stream.To(j, "out", S, S)
	d := mustDriver(t, topo, streamtest.Config{ApplicationID: "app", Partitions: map[string]int32{"users": 2, "orders": 2}})
	u := streamtest.Input(d, "users", S, S)
	o := streamtest.Input(d, "orders", S, S)
	o.Pipe("", "a1", at(1))
	o.Pipe("", "a2", at(2))
	u.Pipe("a", "ann", at(100))
	o.Pipe("", "b1", at(3))
	u.Pipe("b", "bob", at(4))
	o.Pipe("", "a3", at(200))
	u.Pipe("c", "cy", at(5))
	d.EndOfInput()
	got := streamtest.Output(d, "out", S, S).ReadAll()
	var vals []string
	for _, r := range got {
		vals = append(vals, fmt.Sprintf("%s@%v", r.Value, r.Time.Sub(t0).Seconds()))
	}
	slices.Sort(vals)
	want := []string{"a:ann/a1@100", "a:ann/a2@100", "a:ann/a3@200", "b:bob/b1@4"}
	if !slices.Equal(vals, want) {
		t.Fatalf("joined %v, want %v", vals, want)
	}
	if _, ok := d.Engine().Topics().Repartition["app-uo-right-repartition"]; !ok {
		t.Fatalf("no repartition topic for the rekeyed side: %v", d.Engine().Topics().Repartition)
	}
}

// TestWindowJoin: records pair only within a window; closed windows leave
// the store, and a record for a closed window is late.
func TestWindowJoin(t *testing.T) {
	topo := stream.NewTopology()
	l := stream.Source(topo, "l", S, S)
	r := stream.Source(topo, "r", S, S)
	j := stream.WindowJoin(l, r, stream.Tumbling(10e9), stream.Joined[string, string, string]{Key: S, Left: S, Right: S},
		func(_, a, b string) string { return a + b }, stream.Named("wj"))
	stream.To(j, "out", stream.WindowedSerde(S), S)
	d := mustDriver(t, topo, streamtest.Config{ApplicationID: "app"})
	li := streamtest.Input(d, "l", S, S)
	ri := streamtest.Input(d, "r", S, S)
	li.Pipe("k", "L1", at(1))
	ri.Pipe("k", "R1", at(9))
	ri.Pipe("k", "R2", at(11)) // next window: no pair with L1
	li.Pipe("k", "L2", at(12))
	li.Pipe("x", "L3", at(13))
	ri.Pipe("k", "R3", at(25)) // closes [10,20): L and R side of 12 and 11 dropped
	li.Pipe("k", "L4", at(8))  // late: [0,10) closed
	ri.Pipe("k", "R4", at(26))
	li.Pipe("k", "L5", at(27))
	d.EndOfInput()
	var got []string
	for _, rec := range streamtest.Output(d, "out", stream.WindowedSerde(S), S).ReadAll() {
		got = append(got, fmt.Sprintf("%s[%v]%s", rec.Key.Key, rec.Key.Start.Sub(t0).Seconds(), rec.Value))
	}
	want := []string{"k[0]L1R1", "k[10]L2R2", "k[20]L5R3", "k[20]L5R4"}
	if !slices.Equal(got, want) {
		t.Fatalf("joined %v, want %v", got, want)
	}
	if d.LateRecords() != 1 {
		t.Fatalf("late %d, want 1", d.LateRecords())
	}
	// Every window closed at end of input: the store holds only the watermark.
	live := map[string][]byte{}
	for _, rec := range d.Records("app-wj-changelog") {
		live[string(rec.Key)] = rec.Value
	}
	for k, v := range live {
		if v != nil && k != "wm" {
			t.Fatalf("entry %q left in the store", k)
		}
	}
}

// TestWindowJoinRestore: a join's stored records and watermark come back
// from the changelog: a new right record pairs with a restored left one,
// and a record for a window closed before the restart stays late.
func TestWindowJoinRestore(t *testing.T) {
	build := func() *stream.Topology {
		topo := stream.NewTopology()
		j := stream.WindowJoin(stream.Source(topo, "l", S, S), stream.Source(topo, "r", S, S), stream.Tumbling(10e9),
			stream.Joined[string, string, string]{Key: S, Left: S, Right: S},
			func(_, a, b string) string { return a + b }, stream.Named("wj"))
		stream.To(j, "out", stream.WindowedSerde(S), S)
		return topo
	}
	d := mustDriver(t, build(), streamtest.Config{ApplicationID: "app"})
	streamtest.Input(d, "l", S, S).Pipe("k", "L1", at(1))
	streamtest.Input(d, "r", S, S).Pipe("k", "R0", at(12))
	streamtest.Input(d, "l", S, S).Pipe("k", "L2", at(15)) // watermark min(15, 12): closes [0,10)
	e, err := stream.NewEngine(build(), stream.EngineConfig{ApplicationID: "app", Partitions: func(string) (int32, bool) { return 1, true }})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := e.TaskFor("l", 0)
	if err := e.OpenTask(id); err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Records("app-wj-changelog") {
		if err := e.Restore(r); err != nil {
			t.Fatal(err)
		}
	}
	kb, _ := S.Encode("k")
	for _, r := range []*kgo.Record{
		{Topic: "r", Key: kb, Value: []byte("R1"), Timestamp: at(5)},  // late: [0,10) closed before the restart
		{Topic: "r", Key: kb, Value: []byte("R2"), Timestamp: at(16)}, // pairs with the restored L2
	} {
		if err := e.Process(r); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, r := range e.Drain() {
		got = append(got, string(r.Value))
	}
	if !slices.Equal(got, []string{"L2R2"}) || e.LateRecords() != 1 {
		t.Fatalf("after restore: %v, late %d; want [L2R2], late 1", got, e.LateRecords())
	}
}
