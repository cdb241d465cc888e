// Package cloudevents is Weir's HTTP CloudEvents gateway: any service that
// can make an HTTP request publishes and receives CloudEvents 1.0, and every
// event is also a Kafka record that Kafka clients read.
//
// The event model (event.Event, attribute types, JSON format) comes from
// github.com/cloudevents/sdk-go/v2; the mapping onto Kafka records is ours
// (the SDK has no franz-go binding) and follows the CloudEvents Kafka
// protocol binding in binary content mode.
//
// # Routes (Gateway.ServeHTTP, mounted at /events/ and /subscriptions)
//
//	POST   /events/{topic}             ingest: binary, structured or batched mode
//	GET    /events/{topic}?group=G     pull a batch (long-poll), or SSE with
//	                                   Accept: text/event-stream
//	POST   /events/{topic}/commit?group=G
//	GET    /subscriptions              list push subscriptions
//	POST   /subscriptions              create one
//	GET|PUT|DELETE /subscriptions/{name}
//
// # Kafka record of an event (binary content mode)
//
//	+-----------+-------------------------------------------------------+
//	| key       | the partitionkey extension, else null                 |
//	| value     | the event data (null when the event has none)         |
//	| headers   | ce_specversion, ce_id, ce_source, ce_type, then       |
//	|           | ce_subject, ce_time, ce_dataschema when set,          |
//	|           | content-type (datacontenttype), then ce_<extension>   |
//	|           | for each extension in name order; values are the      |
//	|           | attributes' canonical strings                         |
//	| timestamp | the time the gateway accepted the event (CreateTime)  |
//	+-----------+-------------------------------------------------------+
//
// Keyed events go to murmur2(key) mod partitions, as Kafka's default
// partitioner does, so the gateway and Kafka producers agree; unkeyed events
// of one request share a partition chosen round-robin. A record without
// ce_ headers (produced by a Kafka client) reads back as an event of type
// weir.record, source /topics/{topic} and id {topic}/{partition}/{offset}.
//
// Subscriptions are stored as JSON values keyed by name in the compacted
// __weir_subscriptions topic (a nil value deletes); each one is the consumer
// group weir-sub-{name}, and every pull group is the consumer group it
// names, so committed offsets and lag show in Kafka tools.
//
// # Concurrency
//
// HTTP handlers run on the server's goroutines. Ingest appends to partitions
// directly and waits for durability (acks=all) before answering 202. Each
// subscription runs one delivery goroutine per partition; a pull group's
// positions are guarded by its own mutex. Close ends long-polls, streams and
// deliveries and commits delivery progress; the broker and group service
// must outlive the Gateway.
//
// cloudevents must not import kafka, schema, console or server.
package cloudevents
