package stream_test

import (
	"fmt"
	"time"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

// A join: each order with its user's name, whichever arrives first.
func ExampleJoin() {
	S := stream.String()
	topo := stream.NewTopology()
	users := stream.Source(topo, "users", S, S)   // user id → name
	orders := stream.Source(topo, "orders", S, S) // order id → "user:item"
	byUser := stream.Map(orders, func(_, v string) (string, string) {
		var user, item string
		fmt.Sscanf(v, "%1s:%s", &user, &item)
		return user, item
	})
	named := stream.Join(users, byUser, stream.Joined[string, string, string]{Key: S, Left: S, Right: S},
		func(_ string, name, item string) string { return name + " bought " + item }, stream.Named("orders-by-user"))
	stream.To(named, "named-orders", S, S)

	d, err := streamtest.New(topo, streamtest.Config{})
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	streamtest.Input(d, "orders", S, S).Pipe("o1", "a:tea", t0)
	streamtest.Input(d, "users", S, S).Pipe("a", "Ann", t0.Add(time.Hour))
	streamtest.Input(d, "orders", S, S).Pipe("o2", "a:cake", t0.Add(2*time.Hour))
	for _, v := range streamtest.Output(d, "named-orders", S, S).Values() {
		fmt.Println(v)
	}
	if err := d.Err(); err != nil {
		panic(err)
	}
	// Output:
	// Ann bought tea
	// Ann bought cake
}

// A process function: a key's records counted from its first one until
// 10 s later, when a timer emits the count and clears the state.
func ExampleProcess() {
	S, I := stream.String(), stream.Int64()
	topo := stream.NewTopology()
	visits := stream.Source(topo, "visits", S, S)
	bursts := stream.Process(stream.GroupByKey(visits, S, S), I, stream.Processor[string, string, int64, string]{
		OnRecord: func(c *stream.ProcessContext[string, int64, string], _ string) {
			n, ok := c.State()
			if !ok {
				c.SetTimer(c.Time().Add(10 * time.Second))
			}
			c.SetState(n + 1)
		},
		OnTimer: func(c *stream.ProcessContext[string, int64, string]) {
			n, _ := c.State()
			c.ClearState()
			c.Emit(fmt.Sprintf("%s: %d visits by %s", c.Key(), n, c.Time().Format("15:04:05")))
		},
	}, stream.Named("bursts"))
	stream.To(bursts, "bursts", S, S)

	d, err := streamtest.New(topo, streamtest.Config{})
	if err != nil {
		panic(err)
	}
	in := streamtest.Input(d, "visits", S, S)
	t0 := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	in.Pipe("ann", "/", t0)
	in.Pipe("ann", "/cart", t0.Add(4*time.Second))
	in.Pipe("bob", "/", t0.Add(11*time.Second)) // the watermark passes 09:00:10: ann's timer fires
	in.Pipe("ann", "/pay", t0.Add(12*time.Second))
	d.EndOfInput()
	for _, v := range streamtest.Output(d, "bursts", S, S).Values() {
		fmt.Println(v)
	}
	if err := d.Err(); err != nil {
		panic(err)
	}
	// Output:
	// ann: 2 visits by 09:00:10
	// bob: 1 visits by 09:00:21
	// ann: 1 visits by 09:00:22
}
