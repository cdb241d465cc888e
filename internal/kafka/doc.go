// Package kafka is Weir's Apache Kafka wire-protocol adapter: a TCP listener,
// per-connection read and write loops, request framing, dispatch to one
// handler per API key, and the mapping of domain errors to Kafka error codes.
//
// # A thin adapter
//
// Handlers decode nothing by hand and encode nothing by hand: every request and
// response is a franz-go kmsg type. A handler turns the decoded kmsg request
// into a call on the broker or group coordinator with domain types and turns
// the result back into a kmsg response. Business rules live behind those calls,
// never here. Domain errors become Kafka error codes in exactly one place,
// errors.go.
//
// Each API key lives in its own file named after it (18_api_versions.go, later
// 00_produce.go, 01_fetch.go, ...). The file registers the key, the version
// range Weir advertises and its handler from an init function:
//
//	func init() {
//		register(api{Key: 18, MinVersion: 0, MaxVersion: 3, Handle: (*Server).handleApiVersions})
//	}
//
// The table built by register is the only list of supported APIs: the
// ApiVersions response is derived from it, and requests outside it are refused.
//
// # Framing
//
// Every request and response is a frame: a big-endian int32 size followed by
// that many bytes. Sizes below zero or above Options.MaxFrameBytes close the
// connection.
//
//	request frame                          response frame
//	+------------------+                   +------------------+
//	| size      int32  |                   | size      int32  |
//	+------------------+ --.               +------------------+ --.
//	| api key   int16  |   |               | correlation int32|   | header v0
//	| version   int16  |   | header v1     +------------------+   |
//	| correlation int32|   |               | tagged fields    |   | header v1:
//	| client id        |   |               |  (uvarint count) |   | flexible
//	|  nullable string |   |               +------------------+ --' versions,
//	+------------------+ --'               | body (kmsg)      |     except
//	| tagged fields    |  header v2:       |                  |     ApiVersions
//	|  (uvarint count) |  flexible         +------------------+
//	+------------------+  versions
//	| body (kmsg)      |
//	+------------------+
//
// The client id stays a non-compact nullable string even in the flexible
// header v2. The ApiVersions response header is always v0, whatever the
// request version (KIP-511); a client that sends an ApiVersions version Weir
// does not support gets a v0 body with UNSUPPORTED_VERSION and the ApiVersions
// range Weir does support, so it can retry lower. Any other unsupported version,
// an unknown API key or an undecodable body closes the connection, as Kafka does.
//
// # Concurrency
//
// Each connection has two goroutines:
//
//   - The reader reads a frame, decodes it and runs its handler, then the next
//     frame. Handlers therefore run one at a time, in request order, on the
//     reader goroutine: two produce requests on one connection reach the broker
//     in the order they were sent. A handler must not block for long.
//   - The writer writes replies strictly in request order.
//
// A handler that must wait (an fsync group commit for acks=all, a fetch
// long-poll) returns Defer with a function the writer calls, so the reader goes
// on with the next request while the writer waits for this reply. At most a
// fixed number of replies (64) may be outstanding per connection; past that the
// reader stops reading until the writer catches up, which pushes back on the
// client through TCP. A produce with acks=0 returns NoReply: Kafka sends
// nothing for it.
//
// Conn.Context is cancelled when the connection closes, and deferred functions
// must return promptly once it is. A handler or deferred function that panics
// closes its connection and is logged; the process goes on.
//
// # Imports
//
// kafka may import broker, group, batch and metrics, and franz-go's kmsg, kerr
// and kbin. It must not import cloudevents, schema, console or server.
package kafka
