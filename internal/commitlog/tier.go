package commitlog

import (
	"errors"
	"fmt"
	"io"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// What tiered storage needs of a log: the sealed segments, a reader of one
// sealed segment's bytes, and a retention bounded by what the archive
// already holds. The log knows nothing of the archive; its owner (the
// broker) copies segments and tells EnforceLocalRetention how far they are
// copied.

// ErrSegmentGone is returned by OpenSegment for a base offset that names
// no sealed segment (never one, removed by retention, or still active).
var ErrSegmentGone = errors.New("commitlog: no such sealed segment")

// SegmentInfo describes one sealed segment.
type SegmentInfo struct {
	// BaseOffset and LastOffset are the first and last offsets the
	// segment covers.
	BaseOffset, LastOffset int64
	// MaxTimestamp is the largest batch max timestamp, -1 if none.
	MaxTimestamp int64
	// Size is the segment's length in bytes.
	Size int64
}

// SealedSegments lists the sealed segments, oldest first: every segment
// but the active one, skipping empty ones. A sealed segment never changes
// (compaction, which replaces segments, is for compacted topics only), and
// every record it holds is durable and visible.
func (l *Log) SealedSegments() []SegmentInfo {
	segs := *l.segs.Load()
	out := make([]SegmentInfo, 0, len(segs))
	for _, s := range segs[:max(len(segs)-1, 0)] {
		next, size := s.next.Load(), s.size.Load()
		if next <= s.base || size == 0 {
			continue
		}
		out = append(out, SegmentInfo{BaseOffset: s.base, LastOffset: next - 1, MaxTimestamp: s.maxTs.Load(), Size: size})
	}
	return out
}

// SegmentReader reads one sealed segment's bytes. It holds the segment:
// retention may drop it from the log meanwhile, but its file stays until
// Close.
type SegmentReader struct {
	seg  *segment
	size int64
	pos  int64
	done bool
}

// OpenSegment opens the sealed segment with the given base offset for
// reading; the caller must Close it.
func (l *Log) OpenSegment(base int64) (*SegmentReader, error) {
	segs := *l.segs.Load()
	for _, s := range segs[:max(len(segs)-1, 0)] {
		if s.base != base {
			continue
		}
		if !s.acquire() {
			break
		}
		return &SegmentReader{seg: s, size: s.size.Load()}, nil
	}
	return nil, fmt.Errorf("%w: base offset %d in %s", ErrSegmentGone, base, l.opts.Dir)
}

// Size is the segment's length in bytes.
func (r *SegmentReader) Size() int64 { return r.size }

// ReadAt reads the segment's bytes at off.
func (r *SegmentReader) ReadAt(p []byte, off int64) (int, error) {
	if r.done {
		return 0, ErrClosed
	}
	if off >= r.size {
		return 0, io.EOF
	}
	short := false
	if rest := r.size - off; int64(len(p)) > rest {
		p, short = p[:rest], true
	}
	n, err := r.seg.f.ReadAt(p, off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

// Read reads the segment from the start to its end, then io.EOF.
func (r *SegmentReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && r.pos < r.size {
		err = io.ErrUnexpectedEOF
	} else if err == io.EOF {
		err = nil
	}
	return n, err
}

// LocalFile returns the segment's open file (nil once closed), for a
// file:// archive on the same filesystem to hard-link instead of copying
// (vfs.LinkFile). A sealed segment's file is never written again: appends
// go to the active segment, recovery truncates only the last segment (and
// a segment is sealed only once its successor's entry is durable), and
// retention, DeleteRecords and the cleaner replace or remove whole files.
// The caller must not write to it.
func (r *SegmentReader) LocalFile() vfs.File {
	if r.done {
		return nil
	}
	return r.seg.f
}

// FirstTimestamp returns the first batch's base timestamp (-1 for an
// empty segment or a batch without one).
func (r *SegmentReader) FirstTimestamp() (int64, error) {
	if r.size < batch.HeaderSize {
		return -1, nil
	}
	h, err := readHeader(r.seg.f, 0, make([]byte, batch.HeaderSize))
	if err != nil {
		return -1, fmt.Errorf("%w: %s: %w", ErrCorrupt, r.seg.path(logSuffix), err)
	}
	return h.BaseTimestamp, nil
}

// Close lets the segment go.
func (r *SegmentReader) Close() error {
	if !r.done {
		r.done = true
		r.seg.release()
	}
	return nil
}

// EnforceLocalRetention is EnforceRetention for a log whose segments are
// copied to tiered storage: it deletes the oldest sealed segments past
// retentionMs (-1: none) or retentionBytes (<= 0: none), but only those
// wholly below copiedTo, the offset after the last one the archive holds,
// so nothing is lost while the archive lags. The active segment always
// stays. It returns how many segments it removed.
func (l *Log) EnforceLocalRetention(retentionMs, retentionBytes, copiedTo int64) (int, error) {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	segs := *l.segs.Load()
	var total int64
	for _, s := range segs {
		total += s.size.Load()
	}
	nowMs := l.opts.Now().UnixMilli()
	n := 0
	for _, s := range segs[:len(segs)-1] {
		expired := retentionMs >= 0 && s.maxTs.Load() >= 0 && s.maxTs.Load() < nowMs-retentionMs
		byBytes := retentionBytes > 0 && total-s.size.Load() >= retentionBytes
		if !expired && !byBytes || s.next.Load() > copiedTo {
			break
		}
		total -= s.size.Load()
		n++
	}
	if n == 0 {
		return 0, nil
	}
	return n, l.dropSegments(n, segs[n].base)
}
