package stream_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

// deleteKey pipes a tombstone (null value) for key into topic.
func deleteKey(d *streamtest.Driver, topic, key string, ts time.Time) {
	d.PipeRecord(&kgo.Record{Topic: topic, Partition: -1, Key: []byte(key), Timestamp: ts})
}

// upserts renders a topic's records as key=value, key=<nil> for
// tombstones.
func upserts(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		v := string(r.Value)
		if r.Value == nil {
			v = "<nil>"
		}
		out = append(out, string(r.Key)+"="+v)
	}
	return out
}

// enrichment: orders "customer:item" keyed by order id, rekeyed by
// customer and joined with the customers table, inner and left.
func enrichment() *stream.Topology {
	topo := stream.NewTopology()
	customers := stream.TableSource(topo, "customers", S, S, stream.SourceName("customers"))
	orders := stream.Source(topo, "orders", S, S)
	byCustomer := stream.Map(orders, func(_, v string) (string, string) {
		c, item, _ := strings.Cut(v, ":")
		return c, item
	})
	inner := stream.JoinTable(byCustomer, customers, S, func(_ string, item, name string) string {
		return name + " bought " + item
	}, stream.Named("enrich"))
	stream.To(inner, "enriched", S, S)
	left := stream.LeftJoinTable(byCustomer, customers, S, func(c string, item, name string, ok bool) string {
		if !ok {
			name = "unknown " + c
		}
		return name + " bought " + item
	}, stream.Named("enrich-left"))
	stream.To(left, "enriched-left", S, S)
	return topo
}

func TestJoinTableInnerAndLeft(t *testing.T) {
	d := mustDriver(t, enrichment(), streamtest.Config{})
	cust := streamtest.Input(d, "customers", S, S)
	orders := streamtest.Input(d, "orders", S, S)
	cust.Pipe("c1", "Ann", at(1))
	cust.Pipe("c2", "Bob", at(2))
	orders.Pipe("o1", "c1:tea", at(3))
	orders.Pipe("o2", "c3:jam", at(4)) // no such customer
	cust.Pipe("c1", "Anna", at(5))     // an update: later orders see it
	orders.Pipe("o3", "c1:cake", at(6))
	deleteKey(d, "customers", "c2", at(7))
	orders.Pipe("o4", "c2:pie", at(8)) // deleted
	deleteKey(d, "customers", "c9", at(9))

	inner := streamtest.Output(d, "enriched", S, S).ReadAll()
	if got := vals(inner); !slices.Equal(got, []string{"Ann bought tea", "Anna bought cake"}) {
		t.Fatalf("inner: %v", got)
	}
	if inner[0].Key != "c1" || !inner[0].Time.Equal(at(3)) {
		t.Fatalf("inner result keyed %q at %v, want c1 at the order's time", inner[0].Key, inner[0].Time)
	}
	if got := streamtest.Output(d, "enriched-left", S, S).Values(); !slices.Equal(got,
		[]string{"Ann bought tea", "unknown c3 bought jam", "Anna bought cake", "unknown c2 bought pie"}) {
		t.Fatalf("left: %v", got)
	}
	// The customers topic is the table's changelog: no topic of its own.
	if topics := d.Engine().Topics(); len(topics.Changelogs) != 0 || !d.Engine().SourceChangelog("customers") {
		t.Fatalf("changelogs %v; customers a source changelog: %v", topics.Changelogs, d.Engine().SourceChangelog("customers"))
	}
	if id, _ := d.Engine().TaskFor("customers", 0); !slices.Equal(d.Engine().Changelogs(id), []string{"customers"}) {
		t.Fatalf("task changelogs %v", d.Engine().Changelogs(id))
	}
}

// TestTableRestoreFromSourceTopic: a second engine restores the table
// from the source topic's records (updates and a tombstone) and joins
// with it.
func TestTableRestoreFromSourceTopic(t *testing.T) {
	topo := enrichment()
	d := mustDriver(t, topo, streamtest.Config{ApplicationID: "app"})
	cust := streamtest.Input(d, "customers", S, S)
	cust.Pipe("c1", "Ann", at(1))
	cust.Pipe("c2", "Bob", at(2))
	cust.Pipe("c1", "Anna", at(3))
	deleteKey(d, "customers", "c2", at(4))

	e, err := stream.NewEngine(topo, stream.EngineConfig{ApplicationID: "app", Partitions: func(string) (int32, bool) { return 1, true }})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []stream.TaskID{{Subtopology: 0, Partition: 0}, {Subtopology: 1, Partition: 0}} {
		if err := e.OpenTask(id); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range d.Records("customers") {
		if err := e.Restore(r); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for i, o := range []string{"c1:tea", "c2:pie"} {
		if err := e.Process(&kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "o%d", i), Value: []byte(o), Timestamp: at(10)}); err != nil {
			t.Fatal(err)
		}
		// Through the repartition topic, as the runtime would.
		for _, r := range e.Drain() {
			if strings.HasSuffix(r.Topic, "-repartition") {
				if err := e.Process(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, r := range e.Drain() {
			got = append(got, r.Topic+":"+string(r.Value))
		}
	}
	slices.Sort(got)
	if want := []string{"enriched-left:Anna bought tea", "enriched-left:unknown c2 bought pie", "enriched:Anna bought tea"}; !slices.Equal(got, want) {
		t.Fatalf("after restore: %v, want %v", got, want)
	}
	outs, err := e.Commit()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range outs {
		if r.Topic == "customers" {
			t.Fatalf("the engine wrote to the table's source topic: %v", r)
		}
	}
}

func TestJoinTablesInnerLeftOuter(t *testing.T) {
	topo := stream.NewTopology()
	l := stream.TableSource(topo, "left", S, S)
	r := stream.TableSource(topo, "right", S, S)
	stream.ToTable(stream.JoinTables(l, r, func(_ string, a, b string) string { return a + "+" + b }), "inner", S, S)
	stream.ToTable(stream.LeftJoinTables(l, r, func(_ string, a, b string, ok bool) string {
		if !ok {
			b = "-"
		}
		return a + "+" + b
	}), "left-out", S, S)
	stream.ToTable(stream.OuterJoinTables(l, r, func(_ string, a string, aok bool, b string, bok bool) string {
		if !aok {
			a = "-"
		}
		if !bok {
			b = "-"
		}
		return a + "+" + b
	}), "outer", S, S)
	d := mustDriver(t, topo, streamtest.Config{})
	li, ri := streamtest.Input(d, "left", S, S), streamtest.Input(d, "right", S, S)
	li.Pipe("k", "a1", at(1))
	ri.Pipe("k", "b1", at(2))
	li.Pipe("k", "a2", at(3))
	deleteKey(d, "right", "k", at(4))
	deleteKey(d, "left", "k", at(5))
	ri.Pipe("j", "b9", at(6))
	deleteKey(d, "right", "j", at(7))

	for _, c := range []struct {
		topic string
		want  []string
	}{
		{"inner", []string{"k=a1+b1", "k=a2+b1", "k=<nil>"}},
		{"left-out", []string{"k=a1+-", "k=a1+b1", "k=a2+b1", "k=a2+-", "k=<nil>"}},
		{"outer", []string{"k=a1+-", "k=a1+b1", "k=a2+b1", "k=a2+-", "k=<nil>", "j=-+b9", "j=<nil>"}},
	} {
		if got := upserts(d.Records(c.topic)); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.topic, got, c.want)
		}
	}
	if got := d.Records("inner"); !got[2].Timestamp.Equal(at(4)) {
		t.Errorf("the deletion carries %v, want the tombstone's time", got[2].Timestamp)
	}
}

// TestTableMapFilterAndLookups: derived tables forward changes and are
// looked up through their parents' store.
func TestTableMapFilterAndLookups(t *testing.T) {
	topo := stream.NewTopology()
	prices := stream.TableSource(topo, "prices", S, I)
	cheap := stream.FilterTable(prices, func(_ string, p int64) bool { return p < 100 })
	labels := stream.MapTableValues(cheap, func(k string, p int64) string { return fmt.Sprintf("%s@%d", k, p) })
	stream.ToTable(labels, "labels", S, S)
	stream.To(labels.ToStream(), "label-stream", S, S)
	queries := stream.Source(topo, "queries", S, S)
	stream.To(stream.JoinTable(queries, labels, nil, func(_, q, l string) string { return q + ":" + l }), "answers", S, S)

	d := mustDriver(t, topo, streamtest.Config{})
	p := streamtest.Input(d, "prices", S, I)
	q := streamtest.Input(d, "queries", S, S)
	p.Pipe("tea", 50, at(1))
	p.Pipe("gold", 500, at(2)) // filtered out: a (spurious) deletion
	q.Pipe("tea", "q1", at(3))
	q.Pipe("gold", "q2", at(4))
	p.Pipe("tea", 150, at(5)) // no longer cheap: deleted
	q.Pipe("tea", "q3", at(6))
	deleteKey(d, "prices", "gold", at(7))

	if got := upserts(d.Records("labels")); !slices.Equal(got, []string{"tea=tea@50", "gold=<nil>", "tea=<nil>", "gold=<nil>"}) {
		t.Fatalf("labels: %v", got)
	}
	if got := streamtest.Output(d, "label-stream", S, S).Values(); !slices.Equal(got, []string{"tea@50"}) {
		t.Fatalf("ToStream drops deletions: %v", got)
	}
	if got := streamtest.Output(d, "answers", S, S).Values(); !slices.Equal(got, []string{"q1:tea@50"}) {
		t.Fatalf("answers: %v", got)
	}
}

// TestTableHoldsNoWatermarkBack: a window over a stream joined with a
// table closes as the stream's time moves, the table's topic quiet.
func TestTableHoldsNoWatermarkBack(t *testing.T) {
	topo := stream.NewTopology()
	users := stream.TableSource(topo, "users", S, S)
	clicks := stream.Source(topo, "clicks", S, S)
	named := stream.JoinTable(clicks, users, nil, func(_, _, name string) string { return name })
	counts := stream.CountWindows(stream.WindowBy(stream.GroupByKey(named, S, S), stream.Tumbling(10*time.Second)))
	stream.To(stream.Map(counts, func(w stream.Windowed[string], n int64) (string, int64) { return w.Key, n }), "out", S, I)

	d := mustDriver(t, topo, streamtest.Config{})
	streamtest.Input(d, "users", S, S).Pipe("u", "Ann", at(0))
	c := streamtest.Input(d, "clicks", S, S)
	c.Pipe("u", "", at(1))
	c.Pipe("u", "", at(2))
	c.Pipe("u", "", at(15)) // closes [0,10)
	if got := streamtest.Output(d, "out", S, I).ReadAll(); len(got) != 1 || got[0].Value != 2 {
		t.Fatalf("out %+v", got)
	}
}

func TestTableJoinChecks(t *testing.T) {
	topo := stream.NewTopology()
	tb := stream.TableSource(topo, "t", S, S)
	s := stream.Source(topo, "s", S, S)
	stream.To(stream.JoinTable(s, tb, nil, func(_, a, b string) string { return a + b }), "out", S, S)
	_, err := streamtest.New(topo, streamtest.Config{Partitions: map[string]int32{"t": 2, "s": 3}})
	if err == nil || !strings.Contains(err.Error(), "co-partitioned") {
		t.Fatalf("err %v, want a co-partitioning error", err)
	}

	topo = stream.NewTopology()
	tb = stream.TableSource(topo, "t", S, S)
	rekeyed := stream.KeyBy(stream.Source(topo, "s", S, S), func(_, v string) string { return v })
	stream.To(stream.JoinTable(rekeyed, tb, nil, func(_, a, b string) string { return a + b }), "out", S, S)
	if err := topo.Err(); err == nil || !strings.Contains(err.Error(), "value serde") {
		t.Fatalf("err %v, want: pass the value serde", err)
	}
}

func vals(recs []streamtest.Record[string, string]) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Value)
	}
	return out
}
