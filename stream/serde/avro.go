package serde

import (
	"fmt"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weirhq/weir/stream"
)

// Avro returns a serde of T (a struct with `avro` field tags, or any type
// hamba/avro maps onto the schema) framed for the schema registry.
// schema is the Avro schema JSON; it is registered under subject (or
// looked up, with LookupOnly) and its id framed into every encoded value.
//
// Decoding reads frames of any Avro schema the registry holds: the
// frame's schema is the writer schema, this serde's schema the reader
// schema, resolved by Avro's rules (fields added with defaults, removed,
// promoted), so a consumer on schema v2 reads records written with v1. A
// writer schema the reader cannot resolve is ErrSchemaMismatch.
func Avro[T any](client *sr.Client, subject, schema string, opts ...Option) (stream.Serde[T], error) {
	reader, err := parseAvro(schema)
	if err != nil {
		return nil, fmt.Errorf("serde: avro schema: %w", err)
	}
	api := avro.Config{
		TagKey:               "avro",
		UnionResolutionError: true,
		MaxByteSliceSize:     maxAvroBytes,
		MaxSliceAllocSize:    maxAvroBytes,
	}.Freeze()
	compat := avro.NewSchemaCompatibility()
	decodeWith := func(s avro.Schema) func([]byte) (T, error) {
		return func(b []byte) (T, error) {
			// A Reader rather than api.Unmarshal, which takes running out
			// of bytes for success.
			var v T
			r := avro.NewReader(nil, 0, avro.WithReaderConfig(api)).Reset(b)
			r.ReadVal(s, &v)
			if r.Error != nil {
				return v, fmt.Errorf("%w: avro: %w", ErrInvalid, r.Error)
			}
			if r.Peek(); r.Error == nil {
				return v, fmt.Errorf("%w: avro: bytes after the value", ErrInvalid)
			}
			return v, nil
		}
	}
	f := format[T]{
		typ: sr.TypeAvro,
		encode: func(v T) ([]byte, error) {
			b, err := api.Marshal(reader, v)
			if err != nil {
				return nil, fmt.Errorf("serde: avro encode: %w", err)
			}
			return b, nil
		},
		own: decodeWith(reader),
		writer: func(ws sr.Schema, _ []int) (func([]byte) (T, error), error) {
			if len(ws.References) > 0 {
				return nil, fmt.Errorf("%w: avro schema references are not supported", ErrSchemaMismatch)
			}
			w, err := parseAvro(ws.Schema)
			if err != nil {
				return nil, fmt.Errorf("%w: writer schema: %w", ErrSchemaMismatch, err)
			}
			resolved, err := compat.Resolve(reader, w)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrSchemaMismatch, err)
			}
			return decodeWith(resolved), nil
		},
	}
	s, err := newFramed(client, subject, schema, f, buildOptions(opts))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// maxAvroBytes bounds any one string, bytes or array the decoder
// allocates, so a hostile length prefix cannot exhaust memory.
const maxAvroBytes = 64 << 20

// parseAvro parses a schema with a cache of its own: named types of one
// schema version must not leak into the parsing of another.
func parseAvro(schema string) (avro.Schema, error) {
	return avro.ParseWithCache(schema, "", &avro.SchemaCache{})
}
