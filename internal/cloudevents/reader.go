package cloudevents

import (
	"errors"
	"fmt"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// maxDecompressed bounds the decompressed records of one stored batch.
const maxDecompressed = 64 << 20

// clampOffset moves a position outside the readable range to the log
// start, as a consumer with auto.offset.reset=earliest would: below it,
// retention removed the records; past the high watermark, the log is not
// the one the position was taken in (the topic was created again), so all
// of it is new.
func clampOffset(p *broker.Partition, off int64) int64 {
	if start := p.LogStartOffset(); off < start || off > p.HighWatermark() {
		return start
	}
	return off
}

// readOnce reads one chunk of p (about maxBytes) from offset from and calls
// fn for each record at or past it, stopping early when fn returns false.
// It returns the offset to read next. Positions outside the log are
// clamped to it first.
func readOnce(p *broker.Partition, from int64, maxBytes int, fn func(offset, ts int64, r batch.Record) bool) (int64, error) {
	from = clampOffset(p, from)
	data, err := p.Read(from, maxBytes)
	if errors.Is(err, broker.ErrOffsetOutOfRange) {
		from = clampOffset(p, from) // retention moved the start meanwhile
		data, err = p.Read(from, maxBytes)
	}
	if err != nil {
		return from, err
	}
	next := from
	for len(data) > 0 {
		one, rest, err := batch.Split(data)
		if err != nil {
			return next, fmt.Errorf("cloudevents: %s-%d at %d: %w", p.Topic(), p.Index(), next, err)
		}
		data = rest
		h, err := batch.ParseHeader(one)
		if err != nil {
			return next, fmt.Errorf("cloudevents: %s-%d at %d: %w", p.Topic(), p.Index(), next, err)
		}
		if h.Control() {
			next = max(next, h.LastOffset()+1)
			continue
		}
		h, recs, err := batch.RecordsCompacted(one, maxDecompressed)
		if err != nil {
			return next, fmt.Errorf("cloudevents: %s-%d at %d: %w", p.Topic(), p.Index(), next, err)
		}
		for _, r := range recs {
			off := r.Offset(h)
			if off < from {
				continue
			}
			if !fn(off, r.Timestamp(h), r) {
				return off + 1, nil
			}
		}
		next = max(next, h.LastOffset()+1)
	}
	return next, nil
}

// readRecords calls fn for the records of p in [from, until) until fn
// returns false, and returns the offset to read next.
func readRecords(p *broker.Partition, from, until int64, maxBytes int, fn func(offset, ts int64, r batch.Record) bool) (int64, error) {
	stopped, atEnd := false, false
	for from < until && !stopped {
		next, err := readOnce(p, from, maxBytes, func(off, ts int64, r batch.Record) bool {
			if off >= until {
				atEnd = true
				return false
			}
			if !fn(off, ts, r) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil {
			return next, err
		}
		if atEnd {
			return until, nil
		}
		if next <= from {
			return next, nil // nothing more readable
		}
		from = next
	}
	return from, nil
}
