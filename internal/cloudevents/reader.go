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

// readOnce reads one chunk of p (about maxBytes) from offset from, as a
// read_committed Kafka consumer does, and calls fn for each record at or
// past it, stopping early when fn returns false. It returns the offset to
// read next. Positions outside the log are clamped to it first.
//
// Nothing at or past the partition's last stable offset is read, and the
// records of aborted transactions are skipped like control batches: the
// offset returned moves past them, so positions committed from it drain
// the lag. Without transactions the last stable offset is the high
// watermark and no batch is transactional: the read is the plain one.
func readOnce(p *broker.Partition, from int64, maxBytes int, fn func(offset, ts int64, r batch.Record) bool) (int64, error) {
	return readChunk(p, from, maxBytes, true, fn)
}

// readChunk is readOnce; committed false reads up to the high watermark,
// transactions open, committed and aborted alike (read_uncommitted).
func readChunk(p *broker.Partition, from int64, maxBytes int, committed bool, fn func(offset, ts int64, r batch.Record) bool) (int64, error) {
	from = clampOffset(p, from)
	end := int64(-1) // no bound
	if committed {
		if end = p.LastStableOffset(); from >= end {
			return from, nil
		}
	}
	data, err := p.Read(from, maxBytes)
	if errors.Is(err, broker.ErrOffsetOutOfRange) {
		from = clampOffset(p, from) // retention moved the start meanwhile
		data, err = p.Read(from, maxBytes)
	}
	if err != nil {
		return from, err
	}
	next := from
	var aborted []broker.AbortedTxn
	abortedKnown := false
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
		if end >= 0 && h.BaseOffset >= end {
			break // the LSO lies on a batch boundary: undecided from here
		}
		if h.Control() {
			next = max(next, h.LastOffset()+1)
			continue
		}
		if end >= 0 && h.Transactional() {
			if !abortedKnown {
				aborted, abortedKnown = p.AbortedTransactions(from, end), true
			}
			if abortedBatch(aborted, h) {
				next = max(next, h.LastOffset()+1)
				continue
			}
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

// abortedBatch reports whether the transactional batch h belongs to one of
// the aborted transactions: its producer's, begun at or before it and
// ended by an abort marker after it — the test a read_committed Kafka
// consumer applies.
func abortedBatch(aborted []broker.AbortedTxn, h batch.Header) bool {
	for _, a := range aborted {
		if a.ProducerID == h.ProducerID && a.FirstOffset <= h.BaseOffset && h.BaseOffset < a.LastOffset {
			return true
		}
	}
	return false
}

// readRecords calls fn for the records of p in [from, until) until fn
// returns false, and returns the offset to read next. It reads
// uncommitted data: the idempotence memory rebuilds from what the gateway
// wrote, never hands records out.
func readRecords(p *broker.Partition, from, until int64, maxBytes int, fn func(offset, ts int64, r batch.Record) bool) (int64, error) {
	stopped, atEnd := false, false
	for from < until && !stopped {
		next, err := readChunk(p, from, maxBytes, false, func(off, ts int64, r batch.Record) bool {
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
