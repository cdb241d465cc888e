package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// parsed is a schema that parsed (and, with its references, linked)
// successfully. The implementations are immutable once built.
type parsed interface {
	// canonical is the text identity compares: the same for one schema
	// written with different whitespace or key order.
	canonical() string
	// readable lists why data written with writer (a schema of the same
	// type) can not be read with this schema; nil means it can.
	readable(writer parsed) []string
	// validate checks a record payload (after the wire-format prefix).
	validate(payload []byte) error
}

// evolution is implemented by schema types with rules on how a schema may
// follow an older one beyond readability in either direction.
type evolution interface {
	// evolves lists why this schema may not follow old.
	evolves(old parsed) []string
}

// evolutionProblems returns newer's evolution problems against older.
func evolutionProblems(newer, older parsed) []string {
	if e, ok := newer.(evolution); ok {
		return e.evolves(older)
	}
	return nil
}

// dependency is a referenced schema's text, in the order it must be
// loaded: a dependency's own dependencies come before it.
type dependency struct {
	name   string
	schema string
}

// parse parses text as a schema of type typ with deps already resolved.
func parse(typ Type, text string, deps []dependency) (parsed, error) {
	switch typ {
	case Avro:
		return parseAvro(text, deps)
	case JSON:
		return parseJSONSchema(text, deps)
	case Protobuf:
		return parseProtobuf(text, deps)
	}
	return nil, fmt.Errorf("unknown schema type %q", typ)
}

// canonicalJSON re-encodes a JSON document compactly with object keys
// sorted, keeping numbers as written.
func canonicalJSON(text string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	if dec.More() {
		return "", fmt.Errorf("data after the top-level value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(buf.Bytes(), "\n")), nil
}
