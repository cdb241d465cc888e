package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/weirhq/weir/internal/batch"
)

// InternalLog owns one internal topic (OffsetsTopic, SchemasTopic,
// SubscriptionsTopic, ...): it fixes the topic's configs, creates it at
// start-up, replays it, and alone may append to it. Every internal store
// of the node is built on one; clients can read these topics but not
// write, delete, repartition or reconfigure them (the gate and the admin
// operations refuse).
//
// An internal topic has one partition. Its configs are fixed:
// cleanup.policy=compact (compaction, once built, keeps each key's latest
// record; until then nothing is removed), retention.ms=-1 and
// retention.bytes=-1, so time and size retention never delete the node's
// state.
type InternalLog struct {
	b *Broker
	t *Topic
	p *Partition
}

// internalConfigs are the fixed configs of every internal topic: compacted,
// never deleted by time or size, in segments of Options.InternalSegmentBytes
// (Kafka's offsets.topic.segment.bytes), so the cleaner has sealed
// segments to compact.
func (b *Broker) internalConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy":  "compact",
		"retention.ms":    "-1",
		"retention.bytes": "-1",
		"segment.bytes":   strconv.FormatInt(b.opts.InternalSegmentBytes, 10),
	}
}

// maxInternalRecordBytes bounds the decompressed records of one batch read
// back by Replay.
const maxInternalRecordBytes = 64 << 20

// OpenInternalLog returns the log owning the reserved topic name, creating
// the topic if it does not exist. A topic left by an earlier version or
// created before Weir reserved the name has its configs repaired (and a
// warning logged); one with more than one partition cannot be repaired
// and fails the open with an error saying so. Opening the same name again
// returns the same log.
func (b *Broker) OpenInternalLog(name string) (*InternalLog, error) {
	if !IsReservedTopic(name) {
		return nil, fmt.Errorf("broker: %q is not a reserved topic name", name)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	if l := b.internal[name]; l != nil {
		b.mu.Unlock()
		return l, nil
	}
	t := b.topics[name]
	b.mu.Unlock()
	if t == nil {
		var err error
		t, err = b.createTopic(name, 1, b.internalConfigs(), false)
		if errors.Is(err, ErrTopicExists) {
			t, err = b.Topic(name)
		}
		if err != nil {
			return nil, fmt.Errorf("broker: create internal topic %s: %w", name, err)
		}
	}
	if n := len(t.Partitions()); n != 1 {
		return nil, fmt.Errorf("broker: internal topic %s has %d partitions, but Weir keeps its state in exactly 1: "+
			"the topic was not created by Weir; stop the node and remove the topic's metadata and logs from the data directory", name, n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if l := b.internal[name]; l != nil {
		return l, nil
	}
	if want := b.internalConfigs(); !maps.Equal(t.Configs(), want) {
		b.opts.Logger.Warn("broker: repairing the configs of an internal topic", "topic", name, "was", t.Configs(), "now", want)
		if err := b.setTopicConfigs(t, false, func(map[string]string) (map[string]string, error) {
			return want, nil
		}); err != nil {
			return nil, fmt.Errorf("broker: repair internal topic %s: %w", name, err)
		}
	}
	l := &InternalLog{b: b, t: t, p: t.Partitions()[0]}
	b.internal[name] = l
	return l, nil
}

// Topic returns the name of the log's topic.
func (l *InternalLog) Topic() string { return l.t.Name }

// Append writes recs as one batch through the gate and returns a wait
// that blocks until it is durable (or ctx ends): the group coordinator
// appends from its goroutine and waits elsewhere. Record offset deltas
// are assigned in order.
func (l *InternalLog) Append(recs []batch.Record) (wait func(context.Context) error, err error) {
	return l.append(batch.BuildOptions{}, recs)
}

// AppendTxn writes recs as one transactional batch of the producer, as
// Kafka's group coordinator writes a TxnOffsetCommit's offsets: they
// belong to the producer's transaction until AppendMarker ends it, and
// Replay shows them with the batch's producer fields. The transaction
// coordinator has checked the producer's epoch; sequences are not checked
// (every such batch starts at sequence 0, as Kafka's do).
func (l *InternalLog) AppendTxn(producerID int64, epoch int16, recs []batch.Record) (wait func(context.Context) error, err error) {
	if producerID < 0 || epoch < 0 {
		return nil, fmt.Errorf("%w: transactional batch of producer %d epoch %d", ErrInvalidRequest, producerID, epoch)
	}
	return l.append(batch.BuildOptions{HasProducer: true, ProducerID: producerID, ProducerEpoch: epoch, Transactional: true}, recs)
}

// AppendMarker ends the producer's transaction on the log with a commit
// or abort control batch (through the gate's marker path, which checks
// the epoch) and returns a wait for its durability.
func (l *InternalLog) AppendMarker(producerID int64, epoch int16, commit bool) (wait func(context.Context) error, err error) {
	m := Marker{Topic: l.t.Name, ProducerID: producerID, ProducerEpoch: epoch, Commit: commit}
	if producerID < 0 || epoch < 0 {
		return nil, fmt.Errorf("%w: marker of producer %d epoch %d", ErrInvalidRequest, producerID, epoch)
	}
	pr, err := l.b.gate(Write{Topic: l.t.Name, Partition: 0}, origin{log: l, marker: &m})
	if err != nil {
		return nil, err
	}
	p, next := pr.Partition, pr.LastOffset+1
	return func(ctx context.Context) error { return p.WaitDurable(ctx, next) }, nil
}

func (l *InternalLog) append(opts batch.BuildOptions, recs []batch.Record) (wait func(context.Context) error, err error) {
	out := make([]batch.Record, len(recs))
	for i, r := range recs {
		r.OffsetDelta = int32(i)
		out[i] = r
	}
	opts.BaseTimestamp = l.b.opts.Now().UnixMilli()
	raw, err := batch.Build(opts, out)
	if err != nil {
		return nil, err
	}
	pr, err := l.b.gate(Write{Topic: l.t.Name, Partition: 0, Records: raw}, origin{log: l})
	if err != nil {
		return nil, err
	}
	p, next := pr.Partition, pr.LastOffset+1
	return func(ctx context.Context) error { return p.WaitDurable(ctx, next) }, nil
}

// AppendWait writes recs as one batch and returns once it is durable.
func (l *InternalLog) AppendWait(ctx context.Context, recs []batch.Record) error {
	wait, err := l.Append(recs)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// Replay calls fn for every record from the log start to the high
// watermark, in offset order, with its offset. Control batches are
// skipped; batches compaction has thinned are read with their gaps.
func (l *InternalLog) Replay(fn func(offset int64, r batch.Record) error) error {
	return l.ReplayBatches(func(h batch.Header, recs []batch.Record) error {
		if h.Control() {
			return nil
		}
		for _, r := range recs {
			if err := fn(r.Offset(h), r); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReplayBatches calls fn for every batch from the log start to the high
// watermark, in offset order, with its header (producer fields, control
// and transactional bits) and records, control batches included: the
// group coordinator rebuilds its transactions' offsets from them.
func (l *InternalLog) ReplayBatches(fn func(h batch.Header, recs []batch.Record) error) error {
	p := l.p
	off, hw := p.LogStartOffset(), p.HighWatermark()
	for off < hw {
		data, err := p.log.Read(off, 1<<20)
		if err != nil {
			return fmt.Errorf("broker: read %s at %d: %w", l.t.Name, off, err)
		}
		if len(data) == 0 {
			break
		}
		for len(data) > 0 {
			one, rest, err := batch.Split(data)
			if err != nil {
				return fmt.Errorf("broker: %s at %d: %w", l.t.Name, off, err)
			}
			data = rest
			h, recs, err := batch.RecordsCompacted(one, maxInternalRecordBytes)
			if err != nil {
				return fmt.Errorf("broker: %s at %d: %w", l.t.Name, off, err)
			}
			if h.LastOffset() < off {
				continue
			}
			kept := recs[:0]
			for _, r := range recs {
				if r.Offset(h) >= off {
					kept = append(kept, r)
				}
			}
			if err := fn(h, kept); err != nil {
				return err
			}
			off = h.LastOffset() + 1
		}
	}
	return nil
}
