// Package queries writes the NEXMark queries q0, q1, q2, q3, q4, q5, q7
// and q8 with Weir's stream library: an example a user can read, and the
// program behind weir nexmark run. Each query is one function adding its
// operators to a topology, from the NEXMark event stream (Source) to an
// output topic; Build picks one by name.
//
//	topo := stream.NewTopology()
//	if err := queries.Build(topo, "q5", "nexmark", "q5-out"); err != nil { ... }
//	app, _ := stream.New(topo, stream.Config{Brokers: brokers, ApplicationID: "nexmark-q5", Bounded: true})
//	err := app.Run(ctx)
//
// The outputs are exactly those docs/nexmark.md defines and
// nexmark.Reference computes: JSON values with the listed fields, no key
// except q4's {"category":N}. Event time is the event's dateTime; the
// watermark is the highest event time seen minus 4 s per partition, the
// minimum across partitions.
//
// How each query maps onto the library:
//
//	q0, q1, q2  Filter, MapValues                          stateless
//	q3          Filter, Map, Join (unwindowed)             persons ⋈ auctions by seller
//	q4          Process (keyed state + timers) per auction, then Aggregate per category
//	q5          CountWindows over Hopping(10s, 2s), then AggregateWindows of the top per window
//	q7          AggregateWindows over Tumbling(10s): the top-priced bids
//	q8          ReduceWindows (distinct persons, distinct sellers), then WindowJoin
//
// Values crossing repartition topics and kept in stores use small binary
// serdes (state.go); outputs are written by hand as JSON (json.go); events
// are decoded with nexmark.Unmarshal (EventSerde).
//
// It imports the stream library and stream/nexmark only.
package queries
