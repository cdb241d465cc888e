// Package stream is Weir's stream-processing library: typed, testable
// without a broker, talking only the Kafka protocol (franz-go), so it runs
// against Weir, Kafka or Redpanda alike.
//
// # Building a topology
//
// Operators are generic functions (Go methods cannot take type
// parameters) that add a node to a Topology and return a typed handle:
//
//	topo := stream.NewTopology()
//	clicks := stream.Source(topo, "clicks", stream.String(), stream.JSON[Click]())
//	byPage := stream.KeyBy(clicks, func(_ string, c Click) string { return c.Page })
//	g := stream.GroupByKey(byPage, stream.String(), stream.JSON[Click]())   // → repartition topic
//	counts := stream.CountWindows(stream.WindowBy(g, stream.Tumbling(time.Minute)))
//	stream.To(counts, "page-counts", stream.WindowedSerde(stream.String()), stream.Int64())
//
// Stateless: Map, MapValues, Filter, FlatMap, Branch, KeyBy, Merge.
// Keyed state: GroupByKey, then Count, Reduce, Aggregate (a Table: one
// update per record) or WindowBy + CountWindows, ReduceWindows,
// AggregateWindows (one final result per key and window, when it closes),
// with Late as the side output of records too late for any window.
// Session windows: WindowBy(g, Sessions(gap)), merging sessions that a
// record connects (CountWindows, ReduceWindows, AggregateSessions with a
// merge function).
// Joins: Join (no window: every pair once, both sides kept) and WindowJoin
// (pairs within each window). Process runs user code per record with the
// key's state, event-time timers and processing-time timers.
//
// Tables: TableSource reads a compacted topic as a Table (null values
// delete); the topic itself is the table's changelog, restored up to the
// group's committed offset. MapTableValues, FilterTable derive tables;
// JoinTable, LeftJoinTable enrich a stream with the table's current value
// per key; JoinTables, LeftJoinTables, OuterJoinTables join tables into a
// table updated when either side changes; ToTable writes a table's
// updates and deletions (tombstones) to a compacted topic. Count, Reduce
// and Aggregate return tables too.
//
// # Tasks, time and state
//
// A topology is cut into sub-topologies at repartition topics; a task runs
// one sub-topology on one partition number of its input topics, so tasks =
// input partitions, and topics read by one task must be co-partitioned
// (same partition count; checked at start).
//
// Event time comes from the record timestamp or an EventTime extractor.
// Each input partition's watermark is the newest event time seen minus
// OutOfOrderness; a task's watermark is the minimum over its partitions,
// leaving out partitions idle for IdleTimeout of wall-clock time. A window
// [start, end) closes when the watermark reaches end + allowed lateness.
// Repartition topics carry the writing tasks' watermarks as marker records
// (headers weir.stream.wm, weir.stream.task), so downstream tasks need no
// out-of-orderness guess. End of input (a bounded run) is watermark +∞.
//
// Stateful operators keep per-task Stores, each backed by the compacted
// topic <app>-<store>-changelog, written once per changed key per commit
// and read back when a task is assigned. Stores are in memory by default;
// PebbleStore(dir) keeps them on disk (one pebble database per task store,
// dir/<app>/<task>/<store>) for state larger than memory. An on-disk store
// is a CheckpointStore: its changes are applied atomically with the
// changelog offset they reach once that changelog is durable (under
// exactly-once, once the transaction commits), so a task restores only
// the changelog after its checkpoint, and a store without one (after an
// abort or a crash that left uncommitted state) is wiped and restored
// from the start. See pebble.go and state.go.
//
// # Running
//
// Engine is the I/O-free core: records and time in, records to produce
// out. App runs an Engine against a cluster: a consumer group per
// ApplicationID, input, repartition topics and changelogs read
// read_committed. The group's balancer is TaskBalancer: cooperative and
// sticky, it assigns whole tasks, so partition p of every topic a
// sub-topology reads (a join's two sides) stays on one instance. Package
// streamtest runs the same Engine in memory, deterministically.
//
// Metrics (Config.Registerer): records in per operator and out per topic,
// batch processing time, end-to-end latency from event time and from the
// Kafka timestamp (sampled per task and batch), watermark lag, late
// records, state size and restore progress per task and store, commit
// time and aborts; labels are names from the topology, never keys.
//
// Guarantees. AtLeastOnce (the default): produce, flush, then commit the
// input offsets; a crash repeats the work since the last commit.
// ExactlyOnce (Kafka Streams' EOS v2): one transactional producer per
// instance, transactional id <ApplicationID>-<InstanceID>, and one
// transaction per commit interval holding the outputs, repartition
// records, changelog changes and the input offsets (committed through the
// group, with its generation, via kgo's GroupTransactSession). A rebalance
// waits for the open transaction to commit; an aborted transaction rolls
// every task back to its changelog and the input to the committed offsets.
// Consumers of the outputs must read read_committed. See eos.go.
//
// # Concurrency
//
// A Topology is built by one goroutine and then only read. An Engine and
// a streamtest.Driver are single-goroutine. App.Run runs one processing
// loop; user functions are called from it, one record at a time, never
// concurrently within an App.
//
// # Imports
//
// This package and streamtest import only the standard library and
// external modules (franz-go, prometheus, pebble), never Weir's internal
// packages; internal/archtest enforces it. Tests may use embedded.
package stream
