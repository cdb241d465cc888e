package broker

import (
	"fmt"
	"math"
	"strings"

	"github.com/weirhq/weir/internal/batch"
)

// timestampBounds returns how many milliseconds a record's CreateTime may
// lie behind and ahead of the broker's clock on a topic with the explicit
// configs set (math.MaxInt64: unbounded). Each of
// message.timestamp.before.max.ms and after.max.ms left at Kafka's default
// falls back on the deprecated message.timestamp.difference.max.ms, as in
// Kafka 3.x. LogAppendTime topics are unbounded: the broker stamps their
// records.
func (b *Broker) timestampBounds(set map[string]string) (before, after int64) {
	if strings.TrimSpace(b.effective(set, "message.timestamp.type")) == "LogAppendTime" {
		return math.MaxInt64, math.MaxInt64
	}
	diff := b.effectiveInt(set, "message.timestamp.difference.max.ms")
	bound := func(name string) int64 {
		if n := b.effectiveInt(set, name); n != math.MaxInt64 {
			return n
		}
		return diff
	}
	return bound("message.timestamp.before.max.ms"), bound("message.timestamp.after.max.ms")
}

// checkTimestamps refuses, with ErrInvalidTimestamp, record batches holding
// a record whose CreateTime lies outside the topic's bounds, as Kafka's log
// validator does; records without a timestamp (-1) pass. Only topics that
// set a bound pay for it: their batches are decoded once more here. Batches
// that do not decode are left to Append to refuse.
func (p *Partition) checkTimestamps(records []byte) error {
	before, after := p.topic.timestampBefore.Load(), p.topic.timestampAfter.Load()
	if before == math.MaxInt64 && after == math.MaxInt64 {
		return nil
	}
	now := p.broker.opts.Now().UnixMilli()
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if before != math.MaxInt64 {
		lo = now - before
	}
	if after < math.MaxInt64-now {
		hi = now + after
	}
	for rest := records; len(rest) > 0; {
		one, r, err := batch.Split(rest)
		if err != nil {
			return nil
		}
		rest = r
		h, recs, err := batch.Records(one, maxDecompressedBatch)
		if err != nil {
			return nil
		}
		for _, rec := range recs {
			if ts := rec.Timestamp(h); ts != -1 && (ts < lo || ts > hi) {
				return fmt.Errorf("%w: timestamp %d of record %d of a batch is not within [%d, %d]: the topic allows "+
					"%d ms behind and %d ms ahead of the broker's clock (message.timestamp.before.max.ms, after.max.ms)",
					ErrInvalidTimestamp, ts, rec.OffsetDelta, lo, hi, before, after)
			}
		}
	}
	return nil
}
