package server

import (
	"context"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/schema"
)

// SchemasTopic is the internal topic holding the schema registry's
// records, in Confluent's `_schemas` format.
const SchemasTopic = broker.SchemasTopic

// schemaStore persists the registry's records through the broker's
// internal log of _schemas, as kafka.GroupStore does for consumer groups.
type schemaStore struct {
	log *broker.InternalLog
}

var _ schema.Store = (*schemaStore)(nil)

// openSchemaStore opens (creating it if needed) the _schemas internal log.
func openSchemaStore(b *broker.Broker) (*schemaStore, error) {
	l, err := b.OpenInternalLog(SchemasTopic)
	if err != nil {
		return nil, err
	}
	return &schemaStore{log: l}, nil
}

// Append writes the records as one batch and waits until it is durable.
func (s *schemaStore) Append(ctx context.Context, recs []schema.Record) error {
	out := make([]batch.Record, 0, len(recs))
	for _, r := range recs {
		out = append(out, batch.Record{Key: r.Key, Value: r.Value})
	}
	return s.log.AppendWait(ctx, out)
}

// Load replays every record from the log start to the high watermark.
func (s *schemaStore) Load(fn func(schema.Record) error) error {
	return s.log.Replay(func(_ int64, r batch.Record) error {
		return fn(schema.Record{Key: r.Key, Value: r.Value})
	})
}
