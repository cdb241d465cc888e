// Package schema is Weir's schema registry: central schemas with stable
// ids, per-subject versions, compatibility rules for Avro, JSON Schema and
// Protobuf, and the Confluent Schema Registry REST API on top.
//
// # State and durability
//
// A Registry is a state machine over records. Every change (a registered
// version, a soft or hard delete, a config or mode change) is first written
// durably through the Store the registry declares, then applied to memory
// by the same code that replays the store at Open, so memory is always the
// replay of what is stored. The records use Confluent's `_schemas` format:
//
//	key   {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
//	value {"subject":"s","version":1,"id":7,"schemaType":"JSON",
//	       "references":[...],"schema":"...","deleted":false}
//	      (null value: the version was hard-deleted)
//	key   {"keytype":"CONFIG","subject":"s"|null,"magic":0}
//	value {"compatibilityLevel":"FULL"}          (null: config removed)
//	key   {"keytype":"MODE","subject":"s"|null,"magic":0}
//	value {"mode":"READONLY"}                   (null: mode removed)
//
//	key   {"keytype":"WEIR_MAX_ID","subject":null,"magic":0}
//	value {"id":7}                               (Weir's own: the highest id)
//
// Ids are the largest id ever replayed plus one, so they survive restarts.
// A registration that hands out a new highest id writes it also in the
// WEIR_MAX_ID record, in the same batch: _schemas is compacted, and once
// every version of the highest id is hard-deleted and compacted away that
// record still says which ids were used, so none is handed out twice.
//
// # Concurrency
//
// Writers are serialised by one mutex held across the store append, so two
// concurrent registrations never hand out the same id; readers take a
// read lock on the in-memory state only and never wait for the disk.
//
// # Imports
//
// schema must not import broker, kafka, server or franz-go: the server
// passes a Store backed by an internal topic, and the kafka adapter reaches
// the registry through an interface it declares.
package schema
