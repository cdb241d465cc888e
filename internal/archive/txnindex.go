package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A segment's transaction index (Kafka's .txnindex, KIP-405 uploads it
// with the segment) is a small object beside the segment object, written
// before the segment object and the manifest generation that names both,
// so a manifest never names an incomplete one. Its bytes are the broker's (the aborted
// transactions overlapping the segment, in a format the broker draws and
// checks); the archive stores them opaquely, records their size and
// CRC-32C in the segment's manifest entry, verifies both on read, and
// deletes the object with its segment (Trim, Sweep).

// ErrNoTxnIndex is returned by ReadTxnIndex for a segment uploaded without
// a transaction index (before Weir wrote them).
var ErrNoTxnIndex = errors.New("archive: segment has no transaction index")

// TxnIndexKey is the key of the transaction index of segment base-last.
func TxnIndexKey(tp TopicPartition, base, last int64) string {
	return fmt.Sprintf("%s/%020d-%020d.txnindex", tp.dir(), base, last)
}

// putTxnIndex stores meta's transaction index for seg, before the segment
// and the manifest that names it, and records it in seg. An empty index is recorded
// without an object.
func (a *Archive) putTxnIndex(ctx context.Context, tp TopicPartition, seg *Segment, meta SegmentMeta) error {
	if !meta.HasTxnIndex {
		return nil
	}
	if int64(len(meta.TxnIndex)) > a.opts.MaxTxnIndexBytes {
		return fmt.Errorf("archive: %s: transaction index of %d-%d: %d bytes, more than %d",
			tp, seg.BaseOffset, seg.LastOffset, len(meta.TxnIndex), a.opts.MaxTxnIndexBytes)
	}
	seg.TxnIndex, seg.TxnIndexSize = true, int64(len(meta.TxnIndex))
	if len(meta.TxnIndex) == 0 {
		return nil
	}
	seg.TxnIndexCRC32C = crc32.Checksum(meta.TxnIndex, castagnoli)
	key := TxnIndexKey(tp, seg.BaseOffset, seg.LastOffset)
	if err := a.be.Put(ctx, key, bytes.NewReader(meta.TxnIndex), seg.TxnIndexSize); err != nil {
		return fmt.Errorf("archive: %s: upload the transaction index of %d-%d: %w", tp, seg.BaseOffset, seg.LastOffset, err)
	}
	return nil
}

// deleteTxnIndex deletes s's transaction index object, if it has one.
func (a *Archive) deleteTxnIndex(ctx context.Context, tp TopicPartition, s Segment) error {
	if s.TxnIndexSize == 0 {
		return nil
	}
	return a.be.Delete(ctx, TxnIndexKey(tp, s.BaseOffset, s.LastOffset))
}

// ReadTxnIndex returns the transaction index uploaded with the archived
// segment of the given base offset, checked against the size and CRC-32C
// its manifest entry records (a mismatch or a missing object wraps
// ErrCorrupt), and the segment. An empty index (no aborted transaction
// overlaps the segment) is returned without a request; a segment uploaded
// without one gives ErrNoTxnIndex. The read is bounded by
// Options.MaxTxnIndexBytes, whatever the manifest says.
func (a *Archive) ReadTxnIndex(ctx context.Context, tp TopicPartition, baseOffset int64) ([]byte, Segment, error) {
	if err := tp.check(); err != nil {
		return nil, Segment{}, err
	}
	seg, ok := a.cachedSegment(tp, baseOffset)
	if !ok {
		m, err := a.Manifest(ctx, tp)
		if err != nil {
			return nil, Segment{}, err
		}
		if seg, ok = m.segment(baseOffset); !ok {
			return nil, Segment{}, fmt.Errorf("%w: %s base offset %d", ErrSegmentNotFound, tp, baseOffset)
		}
	}
	switch {
	case !seg.TxnIndex:
		return nil, seg, fmt.Errorf("%w: %s segment %d-%d", ErrNoTxnIndex, tp, seg.BaseOffset, seg.LastOffset)
	case seg.TxnIndexSize == 0:
		return nil, seg, nil
	case seg.TxnIndexSize > a.opts.MaxTxnIndexBytes:
		return nil, seg, fmt.Errorf("%w: %s: transaction index of %d-%d: %d bytes, more than %d", ErrCorrupt, tp,
			seg.BaseOffset, seg.LastOffset, seg.TxnIndexSize, a.opts.MaxTxnIndexBytes)
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: transaction index of %d-%d: "+format,
			append([]any{ErrCorrupt, tp, seg.BaseOffset, seg.LastOffset}, args...)...)
	}
	rc, err := a.be.Get(ctx, TxnIndexKey(tp, seg.BaseOffset, seg.LastOffset), 0, seg.TxnIndexSize+1)
	if errors.Is(err, ErrNotFound) {
		return nil, seg, corrupt("listed but missing")
	}
	if err != nil {
		return nil, seg, fmt.Errorf("archive: %s: %w", tp, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, seg.TxnIndexSize+1))
	if err != nil {
		return nil, seg, fmt.Errorf("archive: %s: transaction index of %d-%d: %w", tp, seg.BaseOffset, seg.LastOffset, err)
	}
	if int64(len(b)) != seg.TxnIndexSize {
		return nil, seg, corrupt("%d bytes, want %d", len(b), seg.TxnIndexSize)
	}
	if got := crc32.Checksum(b, castagnoli); got != seg.TxnIndexCRC32C {
		return nil, seg, corrupt("crc32c %08x, want %08x", got, seg.TxnIndexCRC32C)
	}
	return b, seg, nil
}
