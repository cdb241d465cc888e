// Package serde holds stream.Serde implementations for formats that need
// more than the bytes: Avro, JSON Schema and Protobuf through a
// Confluent-compatible schema registry (Weir's, Confluent's, Redpanda's),
// and CloudEvents following the CloudEvents Kafka protocol binding.
//
//	cl, _ := sr.NewClient(sr.URLs("http://localhost:8081"))
//	orders, err := serde.Avro[Order](cl, serde.TopicValue("orders"), orderSchema)
//	...
//	s := stream.Source(topo, "orders", stream.String(), orders)
//
// # Wire format (Confluent framing)
//
// Every value a registry serde writes, and every value it reads, is
//
//	+-------+----------------+----------------------------+-----------+
//	| 0x00  | schema id      | message indexes            | payload   |
//	| magic | 4 bytes, big-  | Protobuf only: zig-zag     | Avro      |
//	| byte  | endian         | varint count, then indexes | binary,   |
//	|       |                | (a lone 0 means [0])       | JSON, or  |
//	|       |                |                            | Protobuf  |
//	+-------+----------------+----------------------------+-----------+
//
// The framing and the per-id dispatch are franz-go's sr.Serde; the
// registry client is sr.Client. A serde registers its schema under its
// subject when it is made (or, with LookupOnly, looks it up) and writes
// that schema's id. It reads a frame of any id: the first time an id
// appears its schema is fetched from the registry, compiled and cached, so
// later records never touch the network. Avro resolves the frame's writer
// schema against the serde's reader schema (schema evolution); JSON Schema
// reads any JSON payload into T (validated against the writer schema with
// ValidateOnDecode); Protobuf reads any schema whose indexed message has
// T's full name. A nil value (a tombstone) decodes as T's zero value.
//
// Subjects follow Confluent's strategies: TopicValue and TopicKey
// (TopicNameStrategy, the default of Confluent's clients), TopicRecord and
// RecordName.
//
// Errors wrap ErrBadFrame, ErrUnknownSchema, ErrSchemaMismatch or
// ErrInvalid (registry failures wrap sr's errors). Decoding never panics
// on untrusted bytes: index counts, Avro lengths and nesting are bounded.
// Schema references (a schema importing another subject's) are not yet
// supported; Protobuf imports of google/protobuf/*.proto are.
//
// # CloudEvents
//
// CloudEvent is a stream.HeaderSerde: as a Source or To value serde it
// reads binary content mode (attributes in ce_ headers, which Weir's HTTP
// gateway writes) and structured mode (application/cloudevents+json
// values), and writes binary mode, or structured with Structured().
//
// # Concurrency
//
// Every serde is safe for concurrent use; learning a new schema id takes a
// lock, reading known ids does not.
//
// # Imports
//
// Public: this package imports the stream package and external modules
// (franz-go's sr, hamba/avro, santhosh-tekuri/jsonschema,
// bufbuild/protocompile, google.golang.org/protobuf, the CloudEvents SDK),
// never Weir's internal packages; internal/archtest enforces it. Its tests
// run against Weir's registry in an embedded broker.
package serde
