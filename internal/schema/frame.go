package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Framing of JSON documents that arrive without the Confluent wire format
// (CloudEvents posted over HTTP to a topic whose values are validated):
// the registry picks the schema, validates the document against it and
// prefixes it with magic byte 0 and the schema id, which is exactly what
// Confluent's JSON Schema serializer writes. Only JSON Schema subjects are
// framed: an Avro or Protobuf document has a binary encoding the sender
// must produce (with the wire format) itself.

// ErrNotFramable is returned by FrameJSON when the subject's schema is not
// a JSON Schema, so a JSON document cannot be framed for it.
var ErrNotFramable = errors.New("schema: only JSON Schema subjects frame JSON data")

// FrameJSON validates the JSON document data against a schema registered
// under subject and returns it in the Confluent wire format. The schema is
// the one dataschema names when it is a registry address ending in
// /subjects/{subject}/versions/{version} (the subject must be subject) or
// /schemas/ids/{id} (the id must be registered under subject), else the
// subject's latest version. Errors name the subject, version and problem.
func (r *Registry) FrameJSON(subject, dataschema string, data []byte) ([]byte, error) {
	ref, err := parseDataSchema(dataschema)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	sr, version, err := r.frameSchema(subject, ref)
	r.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if sr.typ != JSON {
		return nil, fmt.Errorf("%w: subject '%s' version %d is %s", ErrNotFramable, subject, version, sr.typ)
	}
	if sr.p == nil {
		return nil, fmt.Errorf("schema id %d does not parse: %v", sr.id, sr.perr)
	}
	if err := sr.p.validate(data); err != nil {
		return nil, fmt.Errorf("not valid for subject '%s' version %d (schema id %d): %w", subject, version, sr.id, err)
	}
	out := make([]byte, wireHeader, wireHeader+len(data))
	binary.BigEndian.PutUint32(out[1:], uint32(sr.id))
	return append(out, data...), nil
}

// UnframeJSON returns the JSON document of data in the wire format of a
// JSON Schema (the inverse of FrameJSON); ok is false for anything else,
// which is then served as stored.
func (r *Registry) UnframeJSON(data []byte) ([]byte, bool) {
	if len(data) < wireHeader || data[0] != 0 {
		return nil, false
	}
	id := int(int32(binary.BigEndian.Uint32(data[1:wireHeader])))
	r.mu.RLock()
	sr := r.st.schemas[id]
	r.mu.RUnlock()
	if sr == nil || sr.typ != JSON {
		return nil, false
	}
	return data[wireHeader:], true
}

// schemaRef is what a dataschema attribute names in the registry: a
// subject version or a schema id; the zero value names neither.
type schemaRef struct {
	subject string
	version int // latestVersion for "latest"
	id      int
}

// parseDataSchema reads a registry address from a CloudEvents dataschema
// attribute. Addresses that are not registry paths name nothing.
func parseDataSchema(s string) (schemaRef, error) {
	if s == "" {
		return schemaRef{}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return schemaRef{}, nil
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	n := len(parts)
	switch {
	case n >= 4 && parts[n-4] == "subjects" && parts[n-2] == "versions":
		subject, err := url.PathUnescape(parts[n-3])
		if err != nil {
			return schemaRef{}, fmt.Errorf("dataschema %q: bad subject: %v", s, err)
		}
		v, err := parseVersion(parts[n-1])
		if err != nil {
			return schemaRef{}, fmt.Errorf("dataschema %q: %v", s, err)
		}
		return schemaRef{subject: subject, version: v}, nil
	case n >= 3 && parts[n-3] == "schemas" && parts[n-2] == "ids":
		id, err := strconv.Atoi(parts[n-1])
		if err != nil || id <= 0 {
			return schemaRef{}, fmt.Errorf("dataschema %q: bad schema id", s)
		}
		return schemaRef{id: id}, nil
	}
	return schemaRef{}, nil
}

// frameSchema resolves the schema FrameJSON uses; r.mu is held.
func (r *Registry) frameSchema(subject string, ref schemaRef) (*schemaRec, int, error) {
	s := r.st.subjects[subject]
	switch {
	case ref.id != 0:
		sr := r.st.schemas[ref.id]
		if sr == nil {
			return nil, 0, fmt.Errorf("schema id %d is not registered", ref.id)
		}
		if s != nil {
			for _, v := range s.versions {
				if v.schema == sr && !v.deleted {
					return sr, v.version, nil
				}
			}
		}
		return nil, 0, fmt.Errorf("schema id %d is not registered under subject '%s'", ref.id, subject)
	case ref.subject != "" && ref.subject != subject:
		return nil, 0, fmt.Errorf("dataschema names subject '%s', but this topic's values use subject '%s'", ref.subject, subject)
	}
	version := latestVersion
	if ref.subject != "" {
		version = ref.version
	}
	vr, err := s.pick(subject, version, false)
	if err != nil {
		return nil, 0, err
	}
	return vr.schema, vr.version, nil
}
