package serde

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weirhq/weir/stream"
)

// JSONSchema returns a serde of T encoded with encoding/json, validated
// against schema (a JSON Schema document, draft-07 unless its $schema names
// another) before every encode, and framed for the schema registry under
// subject. Decoding reads frames of any JSON schema id into T with
// encoding/json; with ValidateOnDecode it first validates the payload
// against the frame's writer schema.
//
// A value failing validation is ErrInvalid, with the validator's detail.
func JSONSchema[T any](client *sr.Client, subject, schema string, opts ...Option) (stream.Serde[T], error) {
	o := buildOptions(opts)
	own, err := compileJSONSchema(schema)
	if err != nil {
		return nil, fmt.Errorf("serde: json schema: %w", err)
	}
	decodeWith := func(sch *jsonschema.Schema) func([]byte) (T, error) {
		return func(b []byte) (T, error) {
			var v T
			if sch != nil {
				if err := validateJSON(sch, b); err != nil {
					return v, err
				}
			}
			if err := json.Unmarshal(b, &v); err != nil {
				return v, fmt.Errorf("%w: json: %w", ErrInvalid, err)
			}
			return v, nil
		}
	}
	ownDec := decodeWith(nil)
	if o.validateIn {
		ownDec = decodeWith(own)
	}
	f := format[T]{
		typ: sr.TypeJSON,
		encode: func(v T) ([]byte, error) {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("serde: json encode: %w", err)
			}
			if err := validateJSON(own, b); err != nil {
				return nil, err
			}
			return b, nil
		},
		own: ownDec,
		writer: func(ws sr.Schema, _ []int) (func([]byte) (T, error), error) {
			if !o.validateIn {
				return decodeWith(nil), nil
			}
			if len(ws.References) > 0 {
				return nil, fmt.Errorf("%w: json schema references are not supported on decode", ErrSchemaMismatch)
			}
			sch, err := compileJSONSchema(ws.Schema)
			if err != nil {
				return nil, fmt.Errorf("%w: writer schema: %w", ErrSchemaMismatch, err)
			}
			return decodeWith(sch), nil
		},
	}
	s, err := newFramed(client, subject, schema, f, o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// jsonSchemaURL is where a compiled schema lives; the loader refuses every
// URL, so a $ref outside the document fails rather than reaching the
// filesystem or the network.
const jsonSchemaURL = "weir:///schema.json"

func compileJSONSchema(text string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseLoader(jsonschema.SchemeURLLoader{})
	if err := c.AddResource(jsonSchemaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(jsonSchemaURL)
}

func validateJSON(sch *jsonschema.Schema, b []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: json: %w", ErrInvalid, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
