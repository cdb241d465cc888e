package schema

import (
	"context"
	"encoding/json"
)

// Record is one stored change: a key and a value, both JSON in
// Confluent's `_schemas` format; a nil Value is a tombstone.
type Record struct {
	Key   []byte
	Value []byte
}

// Store persists the registry's records in order. Append returns once the
// records are durable; Load replays every stored record, oldest first.
// The registry serialises its calls to Append.
type Store interface {
	Append(ctx context.Context, recs []Record) error
	Load(fn func(Record) error) error
}

// Key types of stored records.
const (
	keySchema = "SCHEMA"
	keyConfig = "CONFIG"
	keyMode   = "MODE"
	// keyMaxID is Weir's own: the highest schema id handed out.
	keyMaxID = "WEIR_MAX_ID"
)

type recordKey struct {
	KeyType string  `json:"keytype"`
	Subject *string `json:"subject"`
	Version int     `json:"version,omitempty"`
	Magic   int     `json:"magic"`
}

type schemaValue struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	Type       Type        `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
	Deleted    bool        `json:"deleted"`
}

type configValue struct {
	CompatibilityLevel Level `json:"compatibilityLevel"`
}

type modeValue struct {
	Mode Mode `json:"mode"`
}

func subjectPtr(subject string) *string {
	if subject == "" {
		return nil
	}
	return &subject
}

// mustJSON marshals the record structs above, which hold only strings,
// ints and bools and so always marshal.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func schemaRecord(v schemaValue) Record {
	k := recordKey{KeyType: keySchema, Subject: &v.Subject, Version: v.Version, Magic: 1}
	if v.Type == Avro {
		v.Type = ""
	}
	return Record{Key: mustJSON(k), Value: mustJSON(v)}
}

func schemaTombstone(subject string, version int) Record {
	k := recordKey{KeyType: keySchema, Subject: &subject, Version: version, Magic: 1}
	return Record{Key: mustJSON(k)}
}

type maxIDValue struct {
	ID int `json:"id"`
}

func maxIDRecord(id int) Record {
	return Record{Key: mustJSON(recordKey{KeyType: keyMaxID}), Value: mustJSON(maxIDValue{ID: id})}
}

func configRecord(subject string, l Level) Record {
	r := Record{Key: mustJSON(recordKey{KeyType: keyConfig, Subject: subjectPtr(subject)})}
	if l != "" {
		r.Value = mustJSON(configValue{CompatibilityLevel: l})
	}
	return r
}

func modeRecord(subject string, m Mode) Record {
	r := Record{Key: mustJSON(recordKey{KeyType: keyMode, Subject: subjectPtr(subject)})}
	if m != "" {
		r.Value = mustJSON(modeValue{Mode: m})
	}
	return r
}
