package stream_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

// A windowed count: clicks per user per minute, tested in memory.
func Example_windowedCount() {
	topo := stream.NewTopology()
	clicks := stream.Source(topo, "clicks", stream.String(), stream.String())
	perMinute := stream.WindowBy(stream.GroupByKey(clicks, stream.String(), stream.String()), stream.Tumbling(time.Minute))
	counts := stream.CountWindows(perMinute)
	stream.To(stream.Map(counts, func(w stream.Windowed[string], n int64) (string, string) {
		return w.Key, fmt.Sprintf("%s %d", w.Start.Format("15:04"), n)
	}), "clicks-per-minute", stream.String(), stream.String())

	d, err := streamtest.New(topo, streamtest.Config{})
	if err != nil {
		panic(err)
	}
	in := streamtest.Input(d, "clicks", stream.String(), stream.String())
	t0 := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	in.Pipe("ann", "/home", t0)
	in.Pipe("bob", "/home", t0.Add(10*time.Second))
	in.Pipe("ann", "/cart", t0.Add(50*time.Second))
	in.Pipe("ann", "/pay", t0.Add(70*time.Second)) // closes 09:00-09:01
	d.EndOfInput()                                 // closes the rest
	for _, r := range streamtest.Output(d, "clicks-per-minute", stream.String(), stream.String()).ReadAll() {
		fmt.Println(r.Key, r.Value)
	}
	if err := d.Err(); err != nil {
		panic(err)
	}
	// Output:
	// ann 09:00 2
	// bob 09:00 1
	// ann 09:01 1
}

// The same kind of count against a real broker: an embedded Weir here,
// any Kafka-protocol cluster in production. A bounded run reads the input
// present at start, closes every window, commits and returns.
func ExampleApp_Run() {
	b, err := embedded.Start(embedded.Options{NoSync: true})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	defer cl.Close()
	now := time.Now()
	for _, user := range []string{"ann", "bob", "ann"} {
		cl.ProduceSync(context.Background(), &kgo.Record{Topic: "clicks", Key: []byte(user), Timestamp: now})
	}

	topo := stream.NewTopology()
	clicks := stream.Source(topo, "clicks", stream.String(), stream.String())
	perMinute := stream.WindowBy(stream.GroupByKey(clicks, stream.String(), stream.String()), stream.Tumbling(time.Minute))
	counts := stream.Map(stream.CountWindows(perMinute), func(w stream.Windowed[string], n int64) (string, int64) { return w.Key, n })
	stream.To(counts, "counts", stream.String(), stream.Int64())

	app, err := stream.New(topo, stream.Config{Brokers: []string{b.Addr()}, ApplicationID: "clicks-app", Bounded: true})
	if err != nil {
		panic(err)
	}
	if err := app.Run(context.Background()); err != nil {
		panic(err)
	}
	rd, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer rd.Close()
	for seen := 0; seen < 2; {
		rd.PollFetches(context.Background()).EachRecord(func(r *kgo.Record) {
			n, _ := stream.Int64().Decode(r.Value)
			fmt.Println(string(r.Key), n)
			seen++
		})
	}
	// Output:
	// ann 2
	// bob 1
}
