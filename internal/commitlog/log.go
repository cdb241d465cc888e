package commitlog

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// mark is a position in the log: the offset after the last batch counted,
// the segment holding that batch, the byte position after it and the
// largest batch max timestamp in that segment up to it (-1 if none).
type mark struct {
	next  int64
	seg   *segment
	pos   int64
	maxTs int64
}

// Log is one partition's durable log. All methods are safe for concurrent
// use; appends are serialised, reads never block appends.
type Log struct {
	opts Options

	mu      sync.Mutex // serialises appends, rolls and removals
	cleanMu sync.Mutex // one Clean at a time (clean.go)
	// segMu is held (before mu) by whatever removes sealed segments
	// (retention, DeleteRecords) and by a Clean while it swaps cleaned
	// files in, so the swap's file operations and fsyncs can run without
	// mu: appends never wait for them.
	segMu      sync.Mutex
	active     *segment
	written    mark // everything written (guarded by mu)
	closed     bool
	noPrealloc bool // preallocation unsupported or failed (guarded by mu)

	segs     atomic.Pointer[[]*segment] // immutable snapshot, oldest first
	logStart atomic.Int64
	visible  atomic.Pointer[mark] // high watermark: what readers may see
	durable  atomic.Int64         // offset after the last fsynced batch
	failed   atomic.Pointer[error]

	// syncMu serialises data fsyncs with the publication of their result,
	// so that once one fsync has failed no later one is trusted: after a
	// writeback error Linux reports the error once and may then report
	// success for data that never reached the disk.
	syncMu   sync.Mutex
	pubMu    sync.Mutex // orders publications of visible/durable
	notifyMu sync.Mutex
	notifyCh chan struct{} // closed and replaced whenever visible/durable/failed change

	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// AppendResult describes an append.
type AppendResult struct {
	// BaseOffset is the offset of the first record appended.
	BaseOffset int64
	// LastOffset is the offset of the last record appended.
	LastOffset int64
	// AppendTimeMs is the LogAppendTime stamped, or -1.
	AppendTimeMs int64
	// LogStartOffset at the time of the append.
	LogStartOffset int64
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.opts.Dir }

// Durability returns the log's fsync policy.
func (l *Log) Durability() Durability { return l.opts.Durability }

// LogStartOffset is the first offset readable.
func (l *Log) LogStartOffset() int64 { return l.logStart.Load() }

// HighWatermark is the offset after the last record readers may see: the
// last durable record under Always, the last written one otherwise.
func (l *Log) HighWatermark() int64 { return l.visible.Load().next }

// EndOffset is the offset the next append will get (written, maybe not yet
// durable or visible).
func (l *Log) EndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written.next
}

// DurableOffset is the offset after the last fsynced record.
func (l *Log) DurableOffset() int64 { return l.durable.Load() }

// Err returns the permanent failure of the log, if any.
func (l *Log) Err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Size is the total size of the log's segments in bytes.
func (l *Log) Size() int64 {
	var n int64
	for _, s := range *l.segs.Load() {
		n += s.size.Load()
	}
	return n
}

// Changed returns a channel closed at the next change of the high
// watermark, durable offset or failure state. Long-polling readers wait on
// it after checking their condition.
func (l *Log) Changed() <-chan struct{} {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()
	return l.notifyCh
}

// Wake wakes the waiters on Changed without a change to the log: for
// state its owner keeps beside it (a partition's transaction index) that
// changed what readers may see.
func (l *Log) Wake() { l.broadcast() }

func (l *Log) broadcast() {
	l.notifyMu.Lock()
	close(l.notifyCh)
	l.notifyCh = make(chan struct{})
	l.notifyMu.Unlock()
}

// fail makes the log refuse appends for good; nothing after the last good
// fsync is ever reported durable.
func (l *Log) fail(err error) {
	err = fmt.Errorf("%w: %s: %w", ErrStorage, l.opts.Dir, err)
	if l.failed.CompareAndSwap(nil, &err) {
		l.opts.Logger.Error("commitlog: log failed; refusing appends", "dir", l.opts.Dir, "err", err)
		l.broadcast()
	}
}

// Append validates one or more concatenated record batches, assigns their
// offsets and writes them. The bytes of b are modified in place (offsets,
// and timestamps under LogAppendTime) and not retained. Under Always the
// data is not yet durable: call WaitDurable(ctx, res.LastOffset+1).
func (l *Log) Append(b []byte) (AppendResult, error) {
	var hdrs [8]batch.Header
	headers := hdrs[:0]
	for rest := b; len(rest) > 0; {
		one, r, err := batch.Split(rest)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: %w", ErrInvalidBatch, err)
		}
		h, err := batch.Verify(one)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: %w", ErrInvalidBatch, err)
		}
		headers = append(headers, h)
		rest = r
	}
	if len(headers) == 0 {
		return AppendResult{}, fmt.Errorf("%w: no batches", ErrInvalidBatch)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if int64(len(b)) > l.opts.SegmentBytes {
		return AppendResult{}, fmt.Errorf("%w: %d bytes > segment.bytes %d", ErrTooLarge, len(b), l.opts.SegmentBytes)
	}
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if err := l.Err(); err != nil {
		return AppendResult{}, err
	}
	nowMs := l.opts.Now().UnixMilli()
	var records int64
	for _, h := range headers {
		records += int64(h.LastOffsetDelta) + 1
	}
	if l.written.next > math.MaxInt64-records {
		return AppendResult{}, fmt.Errorf("%w: offset space exhausted", ErrStorage)
	}
	seg := l.active
	if seg.size.Load() > 0 && (seg.size.Load()+int64(len(b)) > l.opts.SegmentBytes ||
		nowMs-seg.firstAppendMs >= l.opts.SegmentMs ||
		l.written.next+records-seg.base > math.MaxUint32) {
		if err := l.roll(); err != nil {
			return AppendResult{}, err
		}
		seg = l.active
	}

	res := AppendResult{BaseOffset: l.written.next, AppendTimeMs: -1, LogStartOffset: l.logStart.Load()}
	next := l.written.next
	pos := 0
	for i := range headers {
		h := &headers[i]
		one := b[pos : pos+h.Size()]
		batch.SetBaseOffset(one, next)
		h.BaseOffset = next
		if l.opts.LogAppendTime {
			batch.SetLogAppendTime(one, nowMs)
			h.MaxTimestamp = nowMs
			res.AppendTimeMs = nowMs
		}
		next += int64(h.LastOffsetDelta) + 1
		pos += h.Size()
	}

	start := seg.size.Load()
	if end := start + int64(len(b)); end > seg.prealloc && !l.noPrealloc {
		l.preallocate(seg, end)
	}
	if _, err := seg.f.WriteAt(b, start); err != nil {
		// A failed write is not acknowledged; take back any partial bytes so
		// the log stays a valid prefix (e.g. ENOSPC, then space is freed).
		seg.prealloc = min(seg.prealloc, start)
		if terr := seg.f.Truncate(start); terr != nil {
			l.fail(fmt.Errorf("write: %w; truncate after failed write: %w", err, terr))
			return AppendResult{}, l.Err()
		}
		return AppendResult{}, fmt.Errorf("%w: write %s: %w", ErrStorage, seg.path(logSuffix), err)
	}
	if start == 0 {
		seg.firstAppendMs = nowMs
	}
	p := start
	for _, h := range headers {
		seg.track(h, p, l.opts.IndexIntervalBytes)
		p += int64(h.Size())
	}
	seg.size.Store(p)
	seg.next.Store(next)
	l.written = mark{next: next, seg: seg, pos: p, maxTs: seg.maxTs.Load()}
	res.LastOffset = next - 1

	if l.opts.Durability == Always {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	} else {
		l.publish(l.written, false)
	}
	return res, nil
}

// Preallocation bounds: the space reserved ahead of a segment's appends
// grows with the segment, from minPrealloc to maxPrealloc at a time, so a
// small partition reserves little and a busy one allocates blocks in few,
// large steps.
const (
	minPrealloc = 1 << 20
	maxPrealloc = 16 << 20
)

// preallocate reserves disk space for seg from its current reservation to
// past end (never past segment.bytes). Appends into reserved space
// allocate no blocks, which makes their writes and fdatasyncs cheaper
// (9-16% less broker CPU per GB published in the side-by-side runs of
// docs/benchmarks.md). Best effort: where the filesystem cannot, or the
// disk is full, the log appends without it. Called with l.mu held.
func (l *Log) preallocate(seg *segment, end int64) {
	from := max(seg.prealloc, seg.size.Load())
	to := min(end+min(max(end, minPrealloc), maxPrealloc), l.opts.SegmentBytes)
	if to <= from {
		return
	}
	if err := vfs.Preallocate(seg.f, from, to-from); err != nil {
		l.noPrealloc = true
		if !errors.Is(err, errors.ErrUnsupported) {
			l.opts.Logger.Info("commitlog: cannot preallocate; appending without it", "dir", l.opts.Dir, "err", err)
		}
		return
	}
	seg.prealloc = to
}

// trimPrealloc releases the space reserved past seg's data, before the
// segment is sealed or closed. Best effort: the reservation only costs
// disk space, and recovery reads by size, never past it.
func (l *Log) trimPrealloc(seg *segment) {
	size := seg.size.Load()
	if seg.prealloc <= size {
		return
	}
	if err := seg.f.Truncate(size); err != nil {
		l.opts.Logger.Warn("commitlog: releasing preallocated space", "segment", seg.path(logSuffix), "err", err)
		return
	}
	seg.prealloc = size
}

// publish advances the high watermark (and, when synced, the durable
// offset) monotonically and wakes waiters.
func (l *Log) publish(m mark, synced bool) {
	l.pubMu.Lock()
	changed := false
	if cur := l.visible.Load(); cur == nil || m.next > cur.next {
		mm := m
		l.visible.Store(&mm)
		changed = true
	}
	if synced && m.next > l.durable.Load() {
		l.durable.Store(m.next)
		changed = true
	}
	l.pubMu.Unlock()
	if changed {
		l.broadcast()
	}
}

// IsDurable reports, without waiting, whether WaitDurable(ctx, next) would
// return nil at once: the log has not failed and, under Always, every
// offset below next is fsynced.
func (l *Log) IsDurable(next int64) bool {
	if l.Err() != nil {
		return false
	}
	return l.opts.Durability != Always || l.durable.Load() >= next
}

// WaitDurable blocks until every offset below next is durable, the log
// fails (ErrStorage), is closed (ErrClosed) or ctx ends. Under Interval and
// Never it returns at once: those policies acknowledge on write.
func (l *Log) WaitDurable(ctx context.Context, next int64) error {
	if l.opts.Durability != Always {
		return l.Err()
	}
	for {
		ch := l.Changed()
		if l.durable.Load() >= next {
			return nil
		}
		if err := l.Err(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-l.stopped:
			if l.durable.Load() >= next {
				return nil
			}
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// syncLoop is the group committer: each fdatasync covers everything
// written before it started, so concurrent appenders share it.
func (l *Log) syncLoop() {
	defer close(l.stopped)
	var tick <-chan time.Time
	if l.opts.Durability == Interval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.kick:
		case <-tick:
		case <-l.stop:
			return
		}
		l.syncOnce()
	}
}

// syncOnce fsyncs the active segment up to what is written now.
func (l *Log) syncOnce() {
	if l.Err() != nil {
		return
	}
	l.mu.Lock()
	w := l.written
	l.mu.Unlock()
	if w.next <= l.durable.Load() {
		return
	}
	if !w.seg.acquire() {
		return // removed meanwhile: a roll synced it already
	}
	_ = l.syncData(w, "")
	w.seg.release()
}

// syncData fdatasyncs m.seg and publishes m as durable. Once the log has
// failed it neither syncs nor publishes; a failed fsync fails the log.
func (l *Log) syncData(m mark, when string) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.Err(); err != nil {
		return err
	}
	start := time.Now()
	if err := m.seg.f.Sync(); err != nil {
		l.fail(fmt.Errorf("fdatasync %s%s: %w", m.seg.path(logSuffix), when, err))
		return l.Err()
	}
	l.opts.Metrics.observe(time.Since(start), m.next-l.durable.Load())
	l.publish(m, true)
	return nil
}

// Read returns whole batches starting with the one holding offset, up to
// maxBytes (but always at least that first batch), never past the high
// watermark. At the high watermark it returns nil. Offsets below the log
// start or above the high watermark give ErrOffsetOutOfRange.
func (l *Log) Read(offset int64, maxBytes int) ([]byte, error) {
	return l.ReadBuf(offset, maxBytes, nil)
}

// ReadBuf is Read into a buffer from alloc(n), which returns an empty
// slice of capacity at least n (nil alloc: a new one). Callers that
// recycle buffers use it; the data returned lies in that buffer.
func (l *Log) ReadBuf(offset int64, maxBytes int, alloc func(n int) []byte) ([]byte, error) {
	hw := l.visible.Load()
	if offset < l.logStart.Load() || offset > hw.next {
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, l.logStart.Load(), hw.next)
	}
	if offset == hw.next {
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		seg := l.segmentFor(offset)
		if seg == nil {
			return nil, fmt.Errorf("%w: %d below the first segment", ErrOffsetOutOfRange, offset)
		}
		if !seg.acquire() {
			if attempt > 100 {
				return nil, fmt.Errorf("%w: %d: segment removed", ErrOffsetOutOfRange, offset)
			}
			continue
		}
		data, err := l.readSegmentBuf(seg, hw, offset, maxBytes, alloc)
		seg.release()
		return data, err
	}
}

// segmentFor returns the segment whose range holds offset.
func (l *Log) segmentFor(offset int64) *segment {
	segs := *l.segs.Load()
	var found *segment
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].base <= offset {
			found = segs[i]
			break
		}
	}
	return found
}

func (l *Log) readSegment(seg *segment, hw *mark, offset int64, maxBytes int) ([]byte, error) {
	return l.readSegmentBuf(seg, hw, offset, maxBytes, nil)
}

func (l *Log) readSegmentBuf(seg *segment, hw *mark, offset int64, maxBytes int, alloc func(int) []byte) ([]byte, error) {
	var end int64
	switch {
	case seg == hw.seg:
		end = hw.pos
	case seg.base < hw.seg.base:
		end = seg.size.Load()
	default:
		return nil, nil
	}
	pos := seg.lookup(offset)
	hdr := make([]byte, batch.HeaderSize)
	var first batch.Header
	for {
		if pos >= end {
			// The offset lies past this sealed segment's data (its batches
			// end before it): continue in the next segment.
			if seg != hw.seg && seg.next.Load() <= offset {
				return l.readNext(seg, offset, maxBytes, alloc)
			}
			return nil, nil
		}
		h, err := readHeader(seg.f, pos, hdr)
		if err != nil {
			return nil, fmt.Errorf("%w: %s at %d: %w", ErrCorrupt, seg.path(logSuffix), pos, err)
		}
		if h.LastOffset() >= offset {
			first = h
			break
		}
		pos += int64(h.Size())
	}
	want := end - pos
	if want > int64(maxBytes) {
		want = int64(maxBytes)
	}
	if want < int64(first.Size()) {
		want = int64(first.Size())
	}
	if pos+want > end {
		return nil, fmt.Errorf("%w: %s: batch at %d runs past the data", ErrCorrupt, seg.path(logSuffix), pos)
	}
	var buf []byte
	if alloc != nil {
		buf = alloc(int(want))[:want]
	} else {
		buf = make([]byte, want)
	}
	if _, err := seg.f.ReadAt(buf, pos); err != nil {
		return nil, fmt.Errorf("%w: read %s at %d: %w", ErrStorage, seg.path(logSuffix), pos, err)
	}
	// Trim to whole batches, checking each one's CRC so that damage on
	// disk is reported, never served: a damaged batch ends the read, or
	// fails it when it comes first.
	n := 0
	for n+batch.HeaderSize <= len(buf) {
		h, err := batch.ParseHeader(buf[n:])
		if err == nil && n+h.Size() > len(buf) {
			break
		}
		if err == nil && crc32.Checksum(buf[n+batchCRCStart:n+h.Size()], castagnoli) != h.CRC {
			err = batch.ErrCorrupt
		}
		if err != nil {
			if n > 0 {
				break
			}
			return nil, fmt.Errorf("%w: %s at %d: %w", ErrCorrupt, seg.path(logSuffix), pos+int64(n), err)
		}
		n += h.Size()
	}
	return buf[:n], nil
}

// batchCRCStart is where a batch's CRC-32C coverage starts (Attributes).
const batchCRCStart = 21

// readNext reads offset from the segment after seg, for offsets that fall
// in a gap at the end of seg (e.g. after compaction removed batches).
func (l *Log) readNext(seg *segment, offset int64, maxBytes int, alloc func(int) []byte) ([]byte, error) {
	segs := *l.segs.Load()
	for _, s := range segs {
		if s.base > seg.base {
			return l.ReadBuf(max(offset, s.base), maxBytes, alloc)
		}
	}
	return nil, nil
}

// Close syncs, writes the indexes and the clean-shutdown marker, and
// closes the files. Pending WaitDurable calls return.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	// A Clean swapping files in (clean.go) finishes its file operations
	// first; it then sees the log closed and changes nothing more.
	l.segMu.Lock()
	//lint:ignore SA2001 an empty critical section: waiting for the swap is the point
	l.segMu.Unlock()
	if l.syncerRunning() {
		close(l.stop)
		<-l.stopped
	} else {
		close(l.stopped)
	}

	var errs []error
	if l.Err() == nil {
		seg := l.active
		l.trimPrealloc(seg)
		if err := l.syncData(l.written, " at close"); err != nil {
			errs = append(errs, err)
		} else {
			if err := seg.writeIndexes(); err != nil {
				errs = append(errs, err)
			} else if err := writeFileSync(l.opts.FS, l.path(cleanMarker), nil); err != nil {
				errs = append(errs, err)
			} else if err := l.opts.FS.SyncDir(l.opts.Dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, s := range *l.segs.Load() {
		s.release()
	}
	l.broadcast()
	return errors.Join(errs...)
}

func (l *Log) syncerRunning() bool { return l.opts.Durability != Never }
