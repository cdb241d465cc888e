package stream_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

// Enrichment: each order with its customer's current name, read from a
// compacted topic as a table. Orders are keyed by order id, so they are
// rekeyed by customer (through a repartition topic) before the lookup.
func ExampleJoinTable() {
	S := stream.String()
	topo := stream.NewTopology()
	customers := stream.TableSource(topo, "customers", S, S) // customer id → name; null deletes
	orders := stream.Source(topo, "orders", S, S)            // order id → "customer:item"
	byCustomer := stream.Map(orders, func(_, v string) (string, string) {
		c, item, _ := strings.Cut(v, ":")
		return c, item
	})
	enriched := stream.JoinTable(byCustomer, customers, S, func(_ string, item, name string) string {
		return name + " bought " + item
	}, stream.Named("enrich"))
	stream.To(enriched, "enriched", S, S)

	d, err := streamtest.New(topo, streamtest.Config{})
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	cust, ord := streamtest.Input(d, "customers", S, S), streamtest.Input(d, "orders", S, S)
	cust.Pipe("c1", "Ann", t0)
	ord.Pipe("o1", "c1:tea", t0.Add(time.Minute))
	ord.Pipe("o2", "c2:jam", t0.Add(2*time.Minute)) // no customer c2: dropped (LeftJoinTable keeps it)
	cust.Pipe("c1", "Anna", t0.Add(3*time.Minute))
	ord.Pipe("o3", "c1:cake", t0.Add(4*time.Minute))
	d.PipeRecord(&kgo.Record{Topic: "customers", Partition: -1, Key: []byte("c1"), Timestamp: t0.Add(5 * time.Minute)}) // tombstone
	ord.Pipe("o4", "c1:pie", t0.Add(6*time.Minute))
	for _, v := range streamtest.Output(d, "enriched", S, S).Values() {
		fmt.Println(v)
	}
	if err := d.Err(); err != nil {
		panic(err)
	}
	// Output:
	// Ann bought tea
	// Anna bought cake
}

// Session windows: a user's clicks less than 30 minutes apart are one
// visit; a click bridging two visits merges them.
func ExampleSessions() {
	S := stream.String()
	topo := stream.NewTopology()
	clicks := stream.Source(topo, "clicks", S, S, stream.OutOfOrderness(time.Hour))
	visits := stream.WindowBy(stream.GroupByKey(clicks, S, S), stream.Sessions(30*time.Minute))
	pages := stream.AggregateSessions(visits,
		func() []string { return nil },
		func(_ string, page string, acc []string) []string { return append(acc, page) },
		func(_ string, a, b []string) []string { return append(a, b...) }, // two visits become one
		stream.JSON[[]string](), stream.Named("visits"))
	lines := stream.Map(pages, func(w stream.Windowed[string], ps []string) (string, string) {
		return w.Key, fmt.Sprintf("%s %s–%s %v", w.Key, w.Start.Format("15:04"), w.End.Format("15:04"), ps)
	})
	stream.To(lines, "visits", S, S)

	d, err := streamtest.New(topo, streamtest.Config{})
	if err != nil {
		panic(err)
	}
	in := streamtest.Input(d, "clicks", S, S)
	t0 := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	in.Pipe("ann", "/home", t0)
	in.Pipe("ann", "/pay", t0.Add(50*time.Minute))  // 50 min later: a second visit
	in.Pipe("ann", "/cart", t0.Add(25*time.Minute)) // late, but within 30 min of both: one visit
	in.Pipe("bob", "/home", t0.Add(3*time.Hour))    // the watermark passes 9:50 + 30 min: ann's visit closes
	d.EndOfInput()
	for _, v := range streamtest.Output(d, "visits", S, S).Values() {
		fmt.Println(v)
	}
	if err := d.Err(); err != nil {
		panic(err)
	}
	// Output:
	// ann 09:00–09:50 [/home /pay /cart]
	// bob 12:00–12:00 [/home]
}
