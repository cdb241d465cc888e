package commitlog

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// Log compaction (cleanup.policy=compact), Kafka's cleaner semantics on
// one partition: of the records with the same key in the cleaned part of
// the log only the one with the highest offset is kept; offsets never
// change. A clean runs in two passes over the sealed segments below
// CleanOptions.UpTo: the first maps each key (its SHA-256, truncated to 16
// bytes) to its last offset, the second rewrites each segment without the
// records the map supersedes.
//
// Rewritten batches keep their header: base offset, last offset delta,
// producer id, epoch and base sequence, attributes, timestamps; the kept
// records keep their offset deltas. A batch that loses every record
// stays, empty, when it has a producer (so its sequence range still tells
// retries apart after a restart, as Kafka keeps it); runs of emptied
// batches without a producer become one empty batch over their offsets.
// So offsets stay contiguous from batch to batch and recovery checks them
// as before.
//
// Transactions follow Kafka's rules: records of aborted transactions are
// removed (CleanOptions.Aborted), and a commit or abort marker goes once
// no batch of its transaction is left in the log — it is kept by the
// clean that still reads one of them (those batches go in that clean, the
// marker in the next) — once it is older than delete.retention.ms (its
// batch's max timestamp, as for tombstones, so a consumer that read the
// transaction's records still meets its end), and unless it is its
// producer's last batch (its epoch still fences). An open transaction is
// never looked into: UpTo is the last stable offset.
//
// Consecutive segments whose sizes add up to at most segment.bytes are
// cleaned into one (so a log cleaned again and again keeps few, full
// segments, as Kafka's cleaner groups them). A group is rewritten aside
// (<first base>.log.clean.tmp, fsynced), its segments' index files
// removed (made durable by a directory fsync), the new file renamed over
// the first segment's .log (another directory fsync) and then the group's
// other .log files removed, and the new indexes written, neither synced.
// A crash leaves the old files or the new one; after the rename, segments
// the new one wholly covers are leftovers that Open removes (recover.go),
// as it removes .tmp files; missing or torn indexes are rebuilt by
// scanning.

// CleanOptions configure one Clean.
type CleanOptions struct {
	// UpTo: nothing at or past this offset is cleaned (a partition's last
	// stable offset, so an open transaction is never looked into). The
	// active segment is never cleaned, nor one that ends past UpTo.
	UpTo int64
	// Now and MinCompactionLag (min.compaction.lag.ms): a segment holding
	// a batch newer than Now-MinCompactionLag is not cleaned, nor any
	// after it.
	Now              time.Time
	MinCompactionLag time.Duration
	// DeleteRetention (delete.retention.ms): a tombstone (a keyed record
	// with a null value) that is its key's last record is removed once its
	// batch's max timestamp is older than Now-DeleteRetention; until then
	// consumers can still learn of the delete.
	DeleteRetention time.Duration
	// MaxKeys bounds the key map (log.cleaner.dedupe.buffer.size at 24
	// bytes an entry): a clean covers the whole segments whose keys fit.
	// Default 1<<20.
	MaxKeys int
	// Aborted reports whether a transactional data batch belongs to an
	// aborted transaction: its records are not mapped and are removed
	// (the batch stays, empty). Nil: none is.
	Aborted func(h batch.Header) bool
	// AbortDropped is told of each abort marker the clean removes (its
	// producer and offset) before the cleaned file replaces the old one,
	// so the owner's aborted-transactions index can forget the
	// transaction first: a read_committed consumer told of an aborted
	// transaction skips its producer's records until it meets the abort
	// marker. Nil: nobody is told.
	AbortDropped func(producerID, offset int64)
	// Throttle is called with the bytes read and written as the clean
	// goes (log.cleaner.io.max.bytes.per.second); it may sleep. Nil: no
	// limit.
	Throttle func(n int)
}

// CleanStats reports what a Clean did.
type CleanStats struct {
	// Segments is how many segments were cleaned (read in the second
	// pass); Rewritten how many of them changed.
	Segments, Rewritten int
	// CleanedTo is the end of the cleaned segments: the dirty part of the
	// log starts there (the base of the first segment not cleaned).
	CleanedTo      int64
	BytesRead      int64
	BytesWritten   int64
	RecordsRemoved int64
}

const (
	cleanTmpSuffix = ".log.clean.tmp"
	// DefaultCleanMaxKeys is CleanOptions.MaxKeys' default.
	DefaultCleanMaxKeys = 1 << 20
	// maxCleanBatchBytes bounds one batch's decompressed records.
	maxCleanBatchBytes = 64 << 20
)

type keyHash [16]byte

// cleanMap is what the first pass learns: each key's last offset, and
// each producer's last batch (its base offset), the one batch of a
// producer an emptied batch is kept for.
type cleanMap struct {
	keys      map[keyHash]int64
	lastBatch map[int64]int64
	// txnRead: the second pass read a transactional data batch of the
	// producer since its last marker (that transaction's marker stays).
	txnRead map[int64]bool
	buf     []byte // the batch read buffer, shared by both passes
}

func hashKey(k []byte) keyHash {
	sum := sha256.Sum256(k)
	var h keyHash
	copy(h[:], sum[:16])
	return h
}

// Clean compacts the sealed segments below o.UpTo (see the file comment).
// Appends, reads and retention go on meanwhile; a segment retention
// removes during the clean is left removed. Only one Clean runs at a time
// per log.
func (l *Log) Clean(o CleanOptions) (CleanStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultCleanMaxKeys
	}
	if o.Throttle == nil {
		o.Throttle = func(int) {}
	}
	if o.Now.IsZero() {
		o.Now = l.opts.Now()
	}
	var st CleanStats
	if err := l.Err(); err != nil {
		return st, err
	}

	segs := *l.segs.Load()
	lagHorizon := o.Now.Add(-o.MinCompactionLag).UnixMilli()
	var cands []*segment
	hw := l.visible.Load()
	for _, s := range segs[:len(segs)-1] {
		// A segment the high watermark still points into (sealed by a
		// roll, not yet followed by an append) is read up to the mark's
		// position, which a rewrite would invalidate: it waits.
		if s == hw.seg || s.next.Load() > o.UpTo || o.MinCompactionLag > 0 && s.maxTs.Load() > lagHorizon {
			break
		}
		if !s.acquire() {
			continue // removed by retention since the snapshot
		}
		cands = append(cands, s)
	}
	defer func() {
		for _, s := range cands {
			s.release()
		}
	}()
	if len(cands) == 0 {
		return st, nil
	}

	keys := &cleanMap{keys: make(map[keyHash]int64), lastBatch: make(map[int64]int64), txnRead: make(map[int64]bool)}
	mapped := 0
	for _, s := range cands {
		full, err := l.mapSegment(s, keys, &o, &st)
		if err != nil {
			return st, err
		}
		if full {
			break
		}
		mapped++
	}
	if mapped == 0 {
		l.opts.Logger.Warn("commitlog: cleaner key map too small for one segment; not cleaning",
			"dir", l.opts.Dir, "segment", cands[0].base, "max_keys", o.MaxKeys)
		return st, nil
	}

	l.mu.Lock()
	maxGroup := l.opts.SegmentBytes
	l.mu.Unlock()
	tombHorizon := o.Now.Add(-o.DeleteRetention).UnixMilli()
	for _, g := range groupSegments(cands[:mapped], maxGroup) {
		changed, err := l.cleanGroup(g, keys, tombHorizon, &o, &st)
		if err != nil {
			return st, err
		}
		st.Segments += len(g)
		if changed {
			st.Rewritten += len(g)
		}
	}
	st.CleanedTo = cands[mapped-1].next.Load()
	return st, nil
}

// groupSegments cuts segs into runs of consecutive segments whose sizes
// add up to at most maxBytes (a larger segment alone) and whose offsets
// span less than 2^31, so relative index entries still fit.
func groupSegments(segs []*segment, maxBytes int64) [][]*segment {
	var out [][]*segment
	var size int64
	for _, s := range segs {
		n := len(out)
		if n > 0 && size+s.size.Load() <= maxBytes && s.next.Load()-out[n-1][0].base < 1<<31 {
			out[n-1] = append(out[n-1], s)
			size += s.size.Load()
			continue
		}
		out = append(out, []*segment{s})
		size = s.size.Load()
	}
	return out
}

// eachBatch calls fn with every batch of the sealed segment s, in order,
// read into *bufp (grown as needed and kept for the next call).
func eachBatch(s *segment, bufp *[]byte, fn func(h batch.Header, raw []byte) error) error {
	end := s.size.Load()
	hdr := make([]byte, batch.HeaderSize)
	buf := *bufp
	defer func() { *bufp = buf }()
	for pos := int64(0); pos < end; {
		h, err := readHeader(s.f, pos, hdr)
		if err != nil {
			return fmt.Errorf("%w: %s at %d: %w", ErrCorrupt, s.path(logSuffix), pos, err)
		}
		size := int64(h.Size())
		if pos+size > end {
			return fmt.Errorf("%w: %s: batch at %d runs past the data", ErrCorrupt, s.path(logSuffix), pos)
		}
		buf = slices.Grow(buf[:0], int(size))[:size]
		if _, err := s.f.ReadAt(buf, pos); err != nil {
			return fmt.Errorf("%w: read %s at %d: %w", ErrStorage, s.path(logSuffix), pos, err)
		}
		if err := fn(h, buf); err != nil {
			return err
		}
		if pos/cleanYieldBytes != (pos+size)/cleanYieldBytes {
			// Let goroutines that became runnable meanwhile (a produce
			// request, an fsync's waiters) run now rather than at the
			// scheduler's next preemption, up to 10 ms away: the cleaner
			// works in chunks of cleanYieldBytes.
			runtime.Gosched()
		}
		pos += size
	}
	return nil
}

// cleanYieldBytes is how much of a segment the cleaner reads and decodes
// between yields of its processor (runtime.Gosched): about 0.1-0.3 ms of
// work.
const cleanYieldBytes = 256 << 10

// mapSegment adds the keys of s to keys (last offset wins). full reports
// that the map reached o.MaxKeys inside s: s is then not cleaned (what it
// added stays valid: those records are in the log, later than any they
// supersede).
func (l *Log) mapSegment(s *segment, m *cleanMap, o *CleanOptions, st *CleanStats) (full bool, err error) {
	err = eachBatch(s, &m.buf, func(h batch.Header, raw []byte) error {
		o.Throttle(len(raw))
		st.BytesRead += int64(len(raw))
		if h.ProducerID >= 0 {
			m.lastBatch[h.ProducerID] = h.BaseOffset
		}
		if h.Control() || h.Transactional() && o.Aborted != nil && o.Aborted(h) {
			return nil
		}
		_, recs, err := batch.RecordsCompacted(raw, maxCleanBatchBytes)
		if err != nil {
			return fmt.Errorf("%w: %s: batch at offset %d: %w", ErrCorrupt, s.path(logSuffix), h.BaseOffset, err)
		}
		for _, r := range recs {
			if r.Key == nil {
				continue
			}
			k := hashKey(r.Key)
			if _, ok := m.keys[k]; !ok && len(m.keys) >= o.MaxKeys {
				full = true
				return errStop
			}
			m.keys[k] = r.Offset(h)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return full, err
}

var errStop = errors.New("stop")

// cleanGroup rewrites the segments of group into one file without the
// records keys supersedes and swaps it in; changed is false when nothing
// was removed from a group of one (its file stays).
func (l *Log) cleanGroup(group []*segment, keys *cleanMap, tombHorizon int64, o *CleanOptions, st *CleanStats) (changed bool, err error) {
	fsys := l.opts.FS
	tmpName := group[0].path(cleanTmpSuffix)
	f, err := fsys.Create(tmpName)
	if err != nil {
		return false, fmt.Errorf("%w: create %s: %w", ErrStorage, tmpName, err)
	}
	w := &cleanWriter{f: f, name: tmpName, o: o, st: st}
	defer func() {
		if w.f != nil {
			_ = w.f.Close()
		}
		if !changed || err != nil {
			_ = fsys.Remove(tmpName)
		}
	}()
	for _, s := range group {
		err = eachBatch(s, &keys.buf, func(h batch.Header, raw []byte) error {
			o.Throttle(len(raw))
			st.BytesRead += int64(len(raw))
			keep, n, err := thin(h, raw, keys, tombHorizon, o, &w.out)
			if err != nil {
				return fmt.Errorf("%w: %s: batch at offset %d: %w", ErrCorrupt, s.path(logSuffix), h.BaseOffset, err)
			}
			w.removed += int64(n)
			return w.batch(h, raw, keep)
		})
		if err != nil {
			return false, err
		}
	}
	if err := w.flushGap(); err != nil {
		return false, err
	}
	if !w.changed && len(group) == 1 {
		return false, nil
	}
	if err := w.f.Sync(); err != nil {
		return false, fmt.Errorf("%w: fdatasync %s: %w", ErrStorage, tmpName, err)
	}
	err = w.f.Close()
	w.f = nil
	if err != nil {
		return false, fmt.Errorf("%w: close %s: %w", ErrStorage, tmpName, err)
	}
	st.RecordsRemoved += w.removed
	return true, l.swapCleaned(group, tmpName)
}

// cleanWriter writes a cleaned file batch by batch. Runs of batches that
// lose every record and have no producer become one empty batch over
// their offsets.
type cleanWriter struct {
	f       vfs.File
	name    string
	o       *CleanOptions
	st      *CleanStats
	pos     int64
	out     []byte // thin's output buffer
	removed int64
	changed bool          // a batch was left out or thinned
	gap     *batch.Header // the pending run of emptied batches
	gapSame bool          // the run is one empty batch without a producer
	gapEnd  int64
}

func (w *cleanWriter) write(b []byte) error {
	if _, err := w.f.WriteAt(b, w.pos); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrStorage, w.name, err)
	}
	w.pos += int64(len(b))
	w.o.Throttle(len(b))
	w.st.BytesWritten += int64(len(b))
	return nil
}

// batch writes keep, the batch with header h and bytes raw as thinned
// (nil: it goes, and joins the pending run of offsets one empty batch
// covers).
func (w *cleanWriter) batch(h batch.Header, raw, keep []byte) error {
	if keep == nil {
		if w.gap != nil && w.gapEnd+1 == h.BaseOffset && h.LastOffset()-w.gap.BaseOffset < 1<<31-1 {
			w.gapEnd = h.LastOffset()
			w.gap.MaxTimestamp = max(w.gap.MaxTimestamp, h.MaxTimestamp)
			w.gapSame = false
			return nil
		}
		if err := w.flushGap(); err != nil {
			return err
		}
		g := h
		w.gap, w.gapEnd = &g, h.LastOffset()
		// A run of one empty batch without a producer is written back as
		// it was.
		w.gapSame = h.NumRecords == 0 && h.ProducerID < 0
		return nil
	}
	if err := w.flushGap(); err != nil {
		return err
	}
	if &keep[0] != &raw[0] {
		w.changed = true
	}
	return w.write(keep)
}

func (w *cleanWriter) flushGap() error {
	if w.gap == nil {
		return nil
	}
	if !w.gapSame {
		w.changed = true
	}
	g := *w.gap
	g.LastOffsetDelta = int32(w.gapEnd - g.BaseOffset)
	w.gap = nil
	b, err := batch.NewBuilder(batch.BuildOptions{BaseOffset: g.BaseOffset, PartitionLeaderEpoch: g.PartitionLeaderEpoch,
		BaseTimestamp: g.MaxTimestamp, Thinned: &g}).Build()
	if err != nil {
		return err
	}
	return w.write(b)
}

// thin returns the batch without the records keys supersedes (raw itself
// when nothing goes; a new batch in *out when some do; nil when the batch
// goes entirely) and how many records went. A batch left without records
// stays, empty and uncompressed, only when it is its producer's last (so
// the producer's sequence range is still known after a restart, as Kafka
// keeps it); otherwise it goes, and the cleaned file covers its offsets
// with one empty batch over the run it belongs to. A transaction marker
// goes by Kafka's rules (dropMarker); other control batches stay.
func thin(h batch.Header, raw []byte, m *cleanMap, tombHorizon int64, o *CleanOptions, out *[]byte) ([]byte, int, error) {
	last := h.ProducerID >= 0 && m.lastBatch[h.ProducerID] == h.BaseOffset
	if h.Control() {
		if drop, abort := dropMarker(h, raw, m, last, tombHorizon); drop {
			if abort && o.AbortDropped != nil {
				o.AbortDropped(h.ProducerID, h.BaseOffset)
			}
			return nil, int(h.NumRecords), nil
		}
		return raw, 0, nil
	}
	if h.Transactional() {
		m.txnRead[h.ProducerID] = true
	}
	if h.NumRecords == 0 {
		if last {
			return raw, 0, nil
		}
		return nil, 0, nil // an empty batch of an earlier clean: joins the run
	}
	_, recs, err := batch.RecordsCompacted(raw, maxCleanBatchBytes)
	if err != nil {
		return nil, 0, err
	}
	aborted := h.Transactional() && o.Aborted != nil && o.Aborted(h)
	kept := recs[:0:0]
	for _, r := range recs {
		switch {
		case aborted:
		case r.Key == nil:
			kept = append(kept, r)
		case m.keys[hashKey(r.Key)] != r.Offset(h):
			// superseded by a later record of the key
		case r.Value == nil && h.MaxTimestamp < tombHorizon:
			// a tombstone past delete.retention.ms
		default:
			kept = append(kept, r)
		}
	}
	n := len(recs) - len(kept)
	if n == 0 {
		return raw, 0, nil
	}
	if len(kept) == 0 && !last {
		return nil, n, nil
	}
	codec := h.Codec()
	if len(kept) == 0 {
		codec = batch.CodecNone // as Kafka writes empty batches
	}
	b := batch.NewBuilder(batch.BuildOptions{Codec: codec, BaseOffset: h.BaseOffset,
		PartitionLeaderEpoch: h.PartitionLeaderEpoch, BaseTimestamp: h.BaseTimestamp, LogAppendTime: h.LogAppendTime(),
		HasProducer: h.ProducerID >= 0, ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence,
		Transactional: h.Transactional(), Thinned: &h})
	for _, r := range kept {
		if err := b.AppendWithDelta(r); err != nil {
			return nil, 0, err
		}
	}
	nb, err := b.AppendTo((*out)[:0])
	if err != nil {
		return nil, 0, err
	}
	*out = nb
	return nb, n, nil
}

// swapCleaned puts the cleaned file tmpName in the place of the group's
// segments: their index files removed, the file renamed over the first
// one's .log, the others' .log files removed (each step made durable),
// the segment's indexes written, the segment list updated. A group
// retention has cut into meanwhile is left as it is.
//
// Appends never wait for the swap's reads and fsyncs: the cleaned file is
// read back and indexed before anything changes, and the file operations
// run under segMu, which keeps retention and DeleteRecords from removing
// the group's segments meanwhile, while mu (the append lock) is taken
// only to check the group and to install the new segment list. A roll
// meanwhile only adds a segment after the group; a Close makes the swap
// stop before the list changes (the files on disk are then the cleaned
// ones, which recovery reads as any segment).
func (l *Log) swapCleaned(group []*segment, tmpName string) error {
	fsys, dir := l.opts.FS, l.opts.Dir
	first, last := group[0], group[len(group)-1]
	ns, err := l.openCleaned(first.base, tmpName, last.next.Load())
	if err != nil {
		_ = fsys.Remove(tmpName)
		return err
	}
	installed := false
	defer func() {
		if !installed {
			_ = ns.f.Close()
		}
	}()

	l.segMu.Lock()
	defer l.segMu.Unlock()
	l.mu.Lock()
	segs := *l.segs.Load()
	i := slices.Index(segs, first)
	closed := l.closed
	intact := !closed && i >= 0 && i+len(group) <= len(segs) && slices.Equal(segs[i:i+len(group)], group) &&
		!slices.Contains(group, l.written.seg) && !slices.Contains(group, l.visible.Load().seg)
	l.mu.Unlock()
	if !intact {
		_ = fsys.Remove(tmpName)
		if closed {
			return ErrClosed
		}
		return nil
	}
	syncDir := func() error {
		if err := fsys.SyncDir(dir); err != nil {
			return fmt.Errorf("%w: sync dir %s: %w", ErrStorage, dir, err)
		}
		return nil
	}
	for _, s := range group {
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if err := fsys.Remove(s.path(suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: remove %s: %w", ErrStorage, s.path(suf), err)
			}
		}
	}
	if err := syncDir(); err != nil {
		return err
	}
	if err := fsys.Rename(tmpName, first.path(logSuffix)); err != nil {
		return fmt.Errorf("%w: rename %s: %w", ErrStorage, tmpName, err)
	}
	if err := syncDir(); err != nil {
		return err
	}
	// The removals of the group's other files need no fsync of their own:
	// if a crash loses them, Open removes the segments the cleaned one
	// wholly covers (recover.go); the next directory fsync (a roll, the
	// next clean) makes them durable. Nor do the cleaned segment's index
	// files: a crash that loses or tears them makes Open rebuild them by
	// scanning. Each fsync left out is one less disk flush for the
	// produce path's fdatasyncs to queue behind.
	for _, s := range group[1:] {
		if err := fsys.Remove(s.path(logSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: remove %s: %w", ErrStorage, s.path(logSuffix), err)
		}
	}
	if err := ns.writeIndexFiles(false); err != nil {
		l.opts.Logger.Warn("commitlog: writing the indexes of a cleaned segment", "segment", ns.path(logSuffix), "err", err)
	}

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	// Only segMu's holders remove segments and a roll only appends one,
	// so the group is where the check found it, at the same index.
	segs = *l.segs.Load()
	next := slices.Concat(segs[:i], []*segment{ns}, segs[i+len(group):])
	l.segs.Store(&next)
	installed = true
	l.mu.Unlock()
	for _, s := range group {
		s.release() // the log's reference; readers keep the old files open until they finish
	}
	return nil
}

// openCleaned opens the cleaned file tmpName as the segment at base and
// reads it back (CRCs, offsets, in-memory indexes): it must end at next.
// The descriptor stays valid once the file is renamed into place.
func (l *Log) openCleaned(base int64, tmpName string, next int64) (*segment, error) {
	f, err := l.opts.FS.OpenReadWrite(tmpName)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrStorage, tmpName, err)
	}
	ns := &segment{base: base, dir: l.opts.Dir, fs: l.opts.FS, f: f}
	ns.refs.Store(1)
	ns.maxTs.Store(-1)
	ns.next.Store(base)
	ns.firstAppendMs = l.opts.Now().UnixMilli()
	size, err := f.Size()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: size of %s: %w", ErrStorage, tmpName, err)
	}
	if res := ns.scan(size, l.opts.IndexIntervalBytes); res.validSize != size || ns.next.Load() != next {
		_ = f.Close()
		return nil, fmt.Errorf("%w: cleaned segment %s does not read back (next %d, want %d): %v",
			ErrCorrupt, tmpName, ns.next.Load(), next, res.err)
	}
	return ns, nil
}

// Dirt describes a log for the cleaner's choice (Kafka's dirty ratio):
// the sealed segments below cleanedTo hold Clean bytes, the sealed ones
// from it Dirty bytes (the active segment counts in neither), and the
// first dirty segment's newest batch has timestamp FirstDirtyMaxTs (-1
// when nothing is dirty).
type Dirt struct {
	Clean, Dirty    int64
	FirstDirtyMaxTs int64
}

// Dirt measures the log against cleanedTo, the CleanedTo of the last
// Clean (0 before any).
func (l *Log) Dirt(cleanedTo int64) Dirt {
	segs := *l.segs.Load()
	d := Dirt{FirstDirtyMaxTs: -1}
	for _, s := range segs[:len(segs)-1] {
		if s.next.Load() <= cleanedTo {
			d.Clean += s.size.Load()
			continue
		}
		if d.Dirty == 0 {
			d.FirstDirtyMaxTs = s.maxTs.Load()
		}
		d.Dirty += s.size.Load()
	}
	return d
}

// dropMarker reports whether the control batch h (read in order by the
// second pass) goes, and whether it is an abort marker: a commit or abort
// marker goes once the clean read no batch of its transaction (all went
// in earlier cleans), older than the tombstone horizon, and not its
// producer's last batch. An empty control batch goes on the same terms;
// one of an unknown type stays.
func dropMarker(h batch.Header, raw []byte, m *cleanMap, last bool, horizon int64) (drop, abort bool) {
	read := m.txnRead[h.ProducerID]
	delete(m.txnRead, h.ProducerID)
	if read || last || h.MaxTimestamp >= horizon {
		return false, false
	}
	if h.NumRecords == 0 {
		return true, false
	}
	_, recs, err := batch.RecordsCompacted(raw, maxCleanBatchBytes)
	if err != nil || len(recs) == 0 {
		return false, false // kept as it is; the reader decides
	}
	k, err := batch.ParseControlKey(recs[0].Key)
	if err != nil || k.Type != batch.ControlCommit && k.Type != batch.ControlAbort {
		return false, false
	}
	return true, k.Type == batch.ControlAbort
}
