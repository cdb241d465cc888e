package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/schema"
)

// SchemasTopic is the internal topic holding the schema registry's
// records, in Confluent's `_schemas` format.
const SchemasTopic = "_schemas"

// schemaStore persists the registry's records to partition 0 of
// _schemas, as kafka.GroupStore does for consumer groups. The topic is
// created with the first record, so a node whose registry is never used
// has no _schemas topic.
type schemaStore struct {
	b  *broker.Broker
	mu sync.Mutex
	p  *broker.Partition // nil until the topic exists
}

var _ schema.Store = (*schemaStore)(nil)

// partition returns partition 0 of _schemas, creating the topic
// (compacted, never deleted by retention) if create is set; nil if it does
// not exist and create is not set.
func (s *schemaStore) partition(create bool) (*broker.Partition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		return s.p, nil
	}
	if _, err := s.b.Topic(SchemasTopic); err != nil {
		if !errors.Is(err, broker.ErrUnknownTopicOrPartition) {
			return nil, err
		}
		if !create {
			return nil, nil
		}
		cfg := map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
		if _, err := s.b.CreateTopic(SchemasTopic, 1, cfg, false); err != nil && !errors.Is(err, broker.ErrTopicExists) {
			return nil, fmt.Errorf("server: create %s: %w", SchemasTopic, err)
		}
	}
	p, err := s.b.Partition(SchemasTopic, 0)
	if err != nil {
		return nil, err
	}
	s.p = p
	return p, nil
}

// Append writes the records as one batch and waits until it is durable.
func (s *schemaStore) Append(ctx context.Context, recs []schema.Record) error {
	out := make([]batch.Record, 0, len(recs))
	for i, r := range recs {
		out = append(out, batch.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value})
	}
	raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}, out)
	if err != nil {
		return err
	}
	p, err := s.partition(true)
	if err != nil {
		return err
	}
	a, err := p.Append(raw)
	if err != nil {
		return err
	}
	return p.WaitDurable(ctx, a.LastOffset+1)
}

// Load replays every record from the log start to the high watermark.
func (s *schemaStore) Load(fn func(schema.Record) error) error {
	p, err := s.partition(false)
	if err != nil || p == nil {
		return err
	}
	off, hw := p.LogStartOffset(), p.HighWatermark()
	for off < hw {
		data, err := p.Read(off, 1<<20)
		if err != nil {
			return fmt.Errorf("server: read %s at %d: %w", SchemasTopic, off, err)
		}
		if len(data) == 0 {
			break
		}
		for len(data) > 0 {
			one, rest, err := batch.Split(data)
			if err != nil {
				return fmt.Errorf("server: %s at %d: %w", SchemasTopic, off, err)
			}
			data = rest
			h, recs, err := batch.RecordsCompacted(one, 64<<20)
			if err != nil {
				return fmt.Errorf("server: %s at %d: %w", SchemasTopic, off, err)
			}
			for _, r := range recs {
				if r.Offset(h) < off {
					continue
				}
				if err := fn(schema.Record{Key: r.Key, Value: r.Value}); err != nil {
					return err
				}
			}
			off = h.LastOffset() + 1
		}
	}
	return nil
}
