package schema

import (
	"errors"
	"fmt"
	"io"

	"github.com/hamba/avro/v2"
)

// avroConfig decodes payloads for deep validation; the limits match the
// largest record a broker accepts rather than hamba's 1 MiB default.
var avroConfig = avro.Config{
	MaxByteSliceSize:  64 << 20,
	MaxSliceAllocSize: 64 << 20,
}.Freeze()

type avroSchema struct {
	s     avro.Schema
	canon string
}

// parseAvro parses text in a fresh name cache (hamba's default cache is
// process-wide, and two subjects may define one name differently), after
// the references, whose named types text may use.
func parseAvro(text string, deps []dependency) (*avroSchema, error) {
	cache := &avro.SchemaCache{}
	for _, d := range deps {
		if _, err := avro.ParseWithCache(d.schema, "", cache); err != nil {
			return nil, fmt.Errorf("reference %q: %w", d.name, err)
		}
	}
	canon, err := canonicalJSON(text)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	s, err := avro.ParseWithCache(text, "", cache)
	if err != nil {
		return nil, err
	}
	return &avroSchema{s: s, canon: canon}, nil
}

func (a *avroSchema) canonical() string { return a.canon }

// readable applies Avro's schema resolution rules through hamba's
// checker: reader fields missing from the writer need defaults, types may
// only be promoted (int→long→float→double, string↔bytes), enums must know
// the writer's symbols unless the reader has a default, names must match
// (or be aliased).
func (a *avroSchema) readable(writer parsed) []string {
	w, ok := writer.(*avroSchema)
	if !ok {
		return []string{"schema types differ"}
	}
	// A fresh checker each time: hamba caches verdicts by the schemas'
	// parsing canonical form, which ignores defaults.
	if err := avro.NewSchemaCompatibility().Compatible(a.s, w.s); err != nil {
		return []string{err.Error()}
	}
	return nil
}

func (a *avroSchema) validate(payload []byte) error {
	r := avro.NewReader(nil, 0, avro.WithReaderConfig(avroConfig)).Reset(payload)
	var v any
	r.ReadVal(a.s, &v)
	if r.Error != nil && !errors.Is(r.Error, io.EOF) {
		if errors.Is(r.Error, io.ErrUnexpectedEOF) {
			return errors.New("avro: payload ends early")
		}
		return r.Error
	}
	if r.Peek(); r.Error == nil {
		return errors.New("avro: bytes left after the value")
	}
	return nil
}
