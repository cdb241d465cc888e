// Package nexmark is the NEXMark benchmark's data side for Weir's stream
// library: the event model and its JSON, a deterministic generator
// following the original NEXMark model as Flink's nexmark implements it,
// and a reference implementation of queries q0–q5, q7 and q8 with a
// comparison of outputs, to check a streaming implementation against.
//
// It stands alone: it imports neither internal/ packages nor the stream
// library, so the reference stays independent of what it checks.
//
// # Input format
//
// One event per record value, Flink nexmark's Kafka JSON. Exactly the
// member event_type names is an object, the other two are null:
//
//	{"event_type":0|1|2, "person":{...}|null, "auction":{...}|null, "bid":{...}|null}
//
//	person  {"id":N, "name":S, "emailAddress":S, "creditCard":S, "city":S, "state":S,
//	         "dateTime":T, "extra":S}
//	auction {"id":N, "itemName":S, "description":S, "initialBid":N, "reserve":N,
//	         "dateTime":T, "expires":T, "seller":N, "category":N, "extra":S}
//	bid     {"auction":N, "bidder":N, "price":N, "channel":S, "url":S, "dateTime":T,
//	         "extra":S}
//
//	N  integer JSON number (64-bit)
//	S  JSON string
//	T  "yyyy-MM-dd HH:mm:ss.SSS" in UTC, e.g. "2025-01-01 00:00:07.250"
//
// The event time is the member's dateTime. Marshal writes the fields in
// this order; Unmarshal accepts any order (see Unmarshal for what else it
// accepts and rejects). In Go, times are int64 milliseconds since the Unix
// epoch.
//
// # Generator
//
// Generator follows NEXMark's model: of every 50 consecutive events 1 is a
// person, 3 are auctions, 46 are bids; IDs start at 1000; sellers, bidders
// and auctions are mostly "hot" (the first of the latest batch of 100) and
// otherwise drawn from the recent ones, a few IDs ahead of the last one
// created; auctions expire within about the time 100 more auctions take to
// appear; prices are log-uniform from 1.00 to 1,000,000.00 (in cents);
// extra pads events towards 200, 500 and 100 bytes. Event n's time is
// BaseTime + n/Rate; a tenth of the events are emitted up to MaxDelay (3 s)
// late, so the stream is out of order within that bound, and events go
// round robin over Config.Partitions. The same Config gives the same
// events. See Config for every knob and docs/nexmark.md for the model.
//
// # Outputs
//
// Reference computes the output records of each query over all events
// (bounded input), with the values and keys defined in docs/nexmark.md;
// Compare matches an actual output against it as a multiset of JSON values
// (q4: the last value per key).
//
// # Concurrency
//
// A Generator is used by one goroutine. Marshal, Unmarshal, Reference and
// Compare are safe for concurrent use on distinct arguments.
package nexmark
