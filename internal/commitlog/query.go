package commitlog

import (
	"fmt"

	"github.com/weirhq/weir/internal/batch"
)

// maxQueryDecompressed bounds the decompressed size of one batch decoded
// to answer a timestamp query.
const maxQueryDecompressed = 64 << 20

// OffsetForTimestamp returns the first visible offset whose record
// timestamp is >= ts, with that record's timestamp; found is false when no
// visible record is that new (Kafka then answers with the high watermark).
func (l *Log) OffsetForTimestamp(ts int64) (offset, recordTs int64, found bool, err error) {
	hw := l.visible.Load()
	start := l.logStart.Load()
	for _, seg := range *l.segs.Load() {
		if seg.base > hw.seg.base || seg.maxTs.Load() < ts {
			continue
		}
		if !seg.acquire() {
			continue
		}
		offset, recordTs, found, err = l.timeInSegment(seg, hw, ts, start)
		seg.release()
		if err != nil || found {
			return offset, recordTs, found, err
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the largest visible record timestamp and the first
// offset carrying it; found is false for an empty log.
func (l *Log) MaxTimestamp() (offset, ts int64, found bool, err error) {
	hw := l.visible.Load()
	// The high-watermark segment may hold newer batches that are not
	// visible yet: take its maximum from the mark, not the segment.
	maxTs := hw.maxTs
	for _, seg := range *l.segs.Load() {
		if seg.base < hw.seg.base && seg.maxTs.Load() > maxTs {
			maxTs = seg.maxTs.Load()
		}
	}
	if maxTs < 0 {
		return 0, 0, false, nil
	}
	offset, ts, found, err = l.OffsetForTimestamp(maxTs)
	return offset, ts, found, err
}

func (l *Log) timeInSegment(seg *segment, hw *mark, ts, start int64) (int64, int64, bool, error) {
	var end int64
	if seg == hw.seg {
		end = hw.pos
	} else {
		end = seg.size.Load()
	}
	pos := seg.lookup(max(seg.lookupTime(ts), start))
	hdr := make([]byte, batch.HeaderSize)
	for pos < end {
		h, err := readHeader(seg.f, pos, hdr)
		if err != nil {
			return 0, 0, false, fmt.Errorf("%w: %s at %d: %w", ErrCorrupt, seg.path(logSuffix), pos, err)
		}
		// Control batches count, as in Kafka: their timestamps are in the
		// segments' maxima, which MaxTimestamp looks up here.
		if h.MaxTimestamp >= ts && h.LastOffset() >= start {
			buf := make([]byte, h.Size())
			if _, err := seg.f.ReadAt(buf, pos); err != nil {
				return 0, 0, false, fmt.Errorf("%w: read %s at %d: %w", ErrStorage, seg.path(logSuffix), pos, err)
			}
			hh, recs, err := batch.RecordsCompacted(buf, maxQueryDecompressed)
			if err != nil {
				return 0, 0, false, fmt.Errorf("%w: %s at %d: %w", ErrCorrupt, seg.path(logSuffix), pos, err)
			}
			for _, r := range recs {
				o, rts := r.Offset(hh), r.Timestamp(hh)
				if o >= start && rts >= ts {
					return o, rts, true, nil
				}
			}
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}

// Batches calls fn with the header of every visible batch from offset on,
// in order, until fn returns false. Recovery of producer state uses it.
func (l *Log) Batches(from int64, fn func(batch.Header) bool) error {
	hw := l.visible.Load()
	for _, seg := range *l.segs.Load() {
		if seg.base > hw.seg.base || seg.next.Load() <= from {
			continue
		}
		if !seg.acquire() {
			continue
		}
		end := seg.size.Load()
		if seg == hw.seg {
			end = hw.pos
		}
		pos := seg.lookup(max(from, seg.base))
		hdr := make([]byte, batch.HeaderSize)
		for pos < end {
			h, err := readHeader(seg.f, pos, hdr)
			if err != nil {
				seg.release()
				return fmt.Errorf("%w: %s at %d: %w", ErrCorrupt, seg.path(logSuffix), pos, err)
			}
			pos += int64(h.Size())
			if h.LastOffset() < from {
				continue
			}
			if !fn(h) {
				seg.release()
				return nil
			}
		}
		seg.release()
	}
	return nil
}
