package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// wireHeader is the Confluent wire format prefix: magic byte 0, then the
// schema id as a big-endian int32.
//
//	+-----+---------------+--------------------------------+
//	|  0  |  id (4 bytes) | payload (Avro binary, JSON, or |
//	|     |  big-endian   | Protobuf message indexes+msg)  |
//	+-----+---------------+--------------------------------+
const wireHeader = 5

// ErrNoSchemaID is returned by CheckRecord for data that does not start
// with the wire-format prefix.
var ErrNoSchemaID = errors.New("does not start with magic byte 0 and a 4-byte schema id")

// CheckRecord reports whether data (a record key or value) is in the
// Confluent wire format with the id of a schema registered under subject
// (in a version that is not soft-deleted) and, with full, whether the
// payload is valid against that schema (Avro, JSON Schema and Protobuf).
func (r *Registry) CheckRecord(subject string, data []byte, full bool) error {
	if len(data) < wireHeader || data[0] != 0 {
		return ErrNoSchemaID
	}
	id := int(int32(binary.BigEndian.Uint32(data[1:wireHeader])))
	r.mu.RLock()
	sr := r.st.schemas[id]
	var under bool
	if s := r.st.subjects[subject]; s != nil && sr != nil {
		for _, v := range s.versions {
			if v.schema == sr && !v.deleted {
				under = true
				break
			}
		}
	}
	r.mu.RUnlock()
	switch {
	case sr == nil:
		return fmt.Errorf("schema id %d is not registered", id)
	case !under:
		return fmt.Errorf("schema id %d is not registered under subject '%s'", id, subject)
	case !full:
		return nil
	case sr.p == nil:
		return fmt.Errorf("schema id %d does not parse: %v", id, sr.perr)
	}
	if err := sr.p.validate(data[wireHeader:]); err != nil {
		return fmt.Errorf("payload does not match schema id %d: %w", id, err)
	}
	return nil
}
