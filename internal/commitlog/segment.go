package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	idxEntrySize    = 8
	idxTrailerSize  = 32
	tidxEntrySize   = 12
	tidxTrailerSize = 8
)

func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

// parseSegmentName returns the base offset of a "<20 digits>.log" name.
func parseSegmentName(name string) (int64, bool) {
	if !strings.HasSuffix(name, logSuffix) || len(name) != 20+len(logSuffix) {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSuffix(name, logSuffix), 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

type idxEntry struct {
	rel uint32 // offset - base of the first offset of the batch
	pos uint32 // byte position of the batch
}

type tidxEntry struct {
	ts  int64  // max timestamp seen up to and including this batch
	rel uint32 // relative first offset of the batch that raised it
}

// segment is one .log file and its in-memory indexes. Fields written by
// the appender are guarded by mu (indexes) or are atomics (size, next), so
// readers never wait for appends.
type segment struct {
	base int64
	dir  string
	fs   vfs.FS
	f    vfs.File

	size  atomic.Int64 // bytes written
	next  atomic.Int64 // offset after the last batch
	maxTs atomic.Int64 // largest batch max timestamp, -1 if none
	// firstAppendMs is the wall-clock ms of the first append (for
	// segment.ms); guarded by the log's append mutex.
	firstAppendMs int64
	// prealloc is the end of the disk space reserved ahead of appends
	// (vfs.Preallocate), past size until trimmed; guarded by the log's
	// append mutex.
	prealloc int64

	mu          sync.RWMutex
	idx         []idxEntry
	tidx        []tidxEntry
	lastIdxPos  int64 // position of the last index entry
	lastTidxPos int64

	refs atomic.Int64 // 1 for the log + readers; file closed at 0
	dead atomic.Bool  // removed by retention: delete files at 0 refs
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base, suffix))
}

// acquire takes a reader reference; false if the segment is being removed.
func (s *segment) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference, closing (and for dead segments deleting) the
// files when the last one goes.
func (s *segment) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	_ = s.f.Close()
	if s.dead.Load() {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			_ = s.fs.Remove(s.path(suf))
		}
	}
}

// track records the index entries for a batch appended at pos.
func (s *segment) track(h batch.Header, pos int64, interval int64) {
	s.mu.Lock()
	if len(s.idx) == 0 || pos-s.lastIdxPos >= interval {
		s.idx = append(s.idx, idxEntry{rel: uint32(h.BaseOffset - s.base), pos: uint32(pos)})
		s.lastIdxPos = pos
	}
	if h.MaxTimestamp > s.maxTs.Load() {
		if len(s.tidx) == 0 || pos-s.lastTidxPos >= interval {
			s.tidx = append(s.tidx, tidxEntry{ts: h.MaxTimestamp, rel: uint32(h.BaseOffset - s.base)})
			s.lastTidxPos = pos
		} else {
			// Raise the last entry's timestamp: lookups stay correct because
			// an entry promises "no batch before rel has a timestamp >= ts".
			s.tidx[len(s.tidx)-1].ts = h.MaxTimestamp
		}
		s.maxTs.Store(h.MaxTimestamp)
	}
	s.mu.Unlock()
}

// lookup returns the position of the last indexed batch starting at or
// before offset.
func (s *segment) lookup(offset int64) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.idx
	rel := offset - s.base
	i := sort.Search(len(idx), func(i int) bool { return int64(idx[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// lookupTime returns an offset at or before the first batch whose max
// timestamp is >= ts.
func (s *segment) lookupTime(ts int64) int64 {
	// Search under the lock: track raises the last entry's timestamp in
	// place.
	s.mu.RLock()
	defer s.mu.RUnlock()
	tidx := s.tidx
	// Timestamps in tidx rise, and an entry's ts is the running maximum up
	// to the next entry, so every batch before tidx[i].rel has a max
	// timestamp <= tidx[i-1].ts. The first entry reaching ts therefore
	// starts the range holding the answer.
	i := sort.Search(len(tidx), func(i int) bool { return tidx[i].ts >= ts })
	if i == len(tidx) {
		return s.next.Load()
	}
	return s.base + int64(tidx[i].rel)
}

// readHeader reads and parses the batch header at pos.
func readHeader(f vfs.File, pos int64, buf []byte) (batch.Header, error) {
	buf = buf[:batch.HeaderSize]
	if _, err := f.ReadAt(buf, pos); err != nil {
		if errors.Is(err, io.EOF) {
			return batch.Header{}, io.ErrUnexpectedEOF
		}
		return batch.Header{}, err
	}
	return batch.ParseHeader(buf)
}

// writeIndexes persists the segment's indexes with trailers (used when
// sealing and at clean close). The caller fsyncs the directory.
func (s *segment) writeIndexes() error { return s.writeIndexFiles(true) }

// writeIndexFiles writes both index files, fsynced when sync is set.
// Unsynced ones are enough where a crash may lose them: recovery accepts
// index files only whole (CRC-checked, matching the .log's size) and
// rebuilds missing or damaged ones by scanning.
func (s *segment) writeIndexFiles(sync bool) error {
	s.mu.RLock()
	idx := append([]idxEntry(nil), s.idx...)
	tidx := append([]tidxEntry(nil), s.tidx...)
	s.mu.RUnlock()

	b := make([]byte, 0, len(idx)*idxEntrySize+idxTrailerSize)
	for _, e := range idx {
		b = binary.BigEndian.AppendUint32(b, e.rel)
		b = binary.BigEndian.AppendUint32(b, e.pos)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(s.next.Load()))
	b = binary.BigEndian.AppendUint64(b, uint64(s.size.Load()))
	b = binary.BigEndian.AppendUint64(b, uint64(s.maxTs.Load()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(idx)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := writeFileReplace(s.fs, s.path(indexSuffix), b, sync); err != nil {
		return err
	}

	t := make([]byte, 0, len(tidx)*tidxEntrySize+tidxTrailerSize)
	for _, e := range tidx {
		t = binary.BigEndian.AppendUint64(t, uint64(e.ts))
		t = binary.BigEndian.AppendUint32(t, e.rel)
	}
	t = binary.BigEndian.AppendUint32(t, uint32(len(tidx)))
	t = binary.BigEndian.AppendUint32(t, crc32.Checksum(t, castagnoli))
	return writeFileReplace(s.fs, s.path(timeIndexSuffix), t, sync)
}

// loadIndexes reads both index files; ok is false when either is missing,
// damaged, or does not match the .log file's size.
func (s *segment) loadIndexes(logSize int64) (ok bool) {
	b, err := readFile(s.fs, s.path(indexSuffix))
	if err != nil || len(b) < idxTrailerSize {
		return false
	}
	n := len(b)
	if crc32.Checksum(b[:n-4], castagnoli) != binary.BigEndian.Uint32(b[n-4:]) {
		return false
	}
	tr := b[n-idxTrailerSize:]
	next := int64(binary.BigEndian.Uint64(tr[0:]))
	size := int64(binary.BigEndian.Uint64(tr[8:]))
	maxTs := int64(binary.BigEndian.Uint64(tr[16:]))
	count := int(binary.BigEndian.Uint32(tr[24:]))
	if size != logSize || next < s.base || count*idxEntrySize != n-idxTrailerSize {
		return false
	}
	idx := make([]idxEntry, count)
	for i := range idx {
		e := b[i*idxEntrySize:]
		idx[i] = idxEntry{rel: binary.BigEndian.Uint32(e), pos: binary.BigEndian.Uint32(e[4:])}
		if int64(idx[i].pos) >= size || (i > 0 && (idx[i].pos <= idx[i-1].pos || idx[i].rel <= idx[i-1].rel)) {
			return false
		}
	}

	t, err := readFile(s.fs, s.path(timeIndexSuffix))
	if err != nil || len(t) < tidxTrailerSize {
		return false
	}
	m := len(t)
	if crc32.Checksum(t[:m-4], castagnoli) != binary.BigEndian.Uint32(t[m-4:]) {
		return false
	}
	tcount := int(binary.BigEndian.Uint32(t[m-8:]))
	if tcount*tidxEntrySize != m-tidxTrailerSize {
		return false
	}
	tidx := make([]tidxEntry, tcount)
	for i := range tidx {
		e := t[i*tidxEntrySize:]
		tidx[i] = tidxEntry{ts: int64(binary.BigEndian.Uint64(e)), rel: binary.BigEndian.Uint32(e[8:])}
	}

	s.mu.Lock()
	s.idx, s.tidx = idx, tidx
	if len(idx) > 0 {
		s.lastIdxPos = int64(idx[len(idx)-1].pos)
	}
	s.lastTidxPos = s.lastIdxPos
	s.mu.Unlock()
	s.size.Store(size)
	s.next.Store(next)
	s.maxTs.Store(maxTs)
	return true
}

// scanResult is what a scan of a .log file found.
type scanResult struct {
	validSize int64 // bytes of valid, contiguous batches from 0
	err       error // why the scan stopped before the file's end (nil at EOF)
	// ioErr says err is a failed read, not damage: nothing may be
	// truncated on its account.
	ioErr bool
}

// scan walks the .log file from the start, verifying every batch (thinned
// ones too) and that offsets are contiguous from expectBase, and rebuilds
// the indexes. It
// stops at the first invalid batch.
func (s *segment) scan(fileSize int64, interval int64) scanResult {
	s.mu.Lock()
	s.idx, s.tidx, s.lastIdxPos, s.lastTidxPos = nil, nil, 0, 0
	s.mu.Unlock()
	s.maxTs.Store(-1)
	s.next.Store(s.base)
	s.size.Store(0)

	var pos int64
	hdr := make([]byte, batch.HeaderSize)
	var buf []byte
	for pos < fileSize {
		if fileSize-pos < batch.HeaderSize {
			return scanResult{validSize: pos, err: fmt.Errorf("%d trailing bytes at %d: %w", fileSize-pos, pos, io.ErrUnexpectedEOF)}
		}
		if _, err := s.f.ReadAt(hdr, pos); err != nil {
			return scanResult{validSize: pos, err: fmt.Errorf("read at %d: %w", pos, err), ioErr: true}
		}
		h, err := batch.ParseHeader(hdr)
		if err != nil {
			return scanResult{validSize: pos, err: fmt.Errorf("header at %d: %w", pos, err)}
		}
		size := int64(h.Size())
		if pos+size > fileSize {
			return scanResult{validSize: pos, err: fmt.Errorf("batch at %d needs %d bytes, file has %d: %w", pos, size, fileSize-pos, io.ErrUnexpectedEOF)}
		}
		if int64(cap(buf)) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := s.f.ReadAt(buf, pos); err != nil {
			return scanResult{validSize: pos, err: fmt.Errorf("read at %d: %w", pos, err), ioErr: true}
		}
		// Compaction thins batches, and replaces removed ones by empty
		// batches over their offsets (clean.go), so offsets stay
		// contiguous from batch to batch.
		if _, err := batch.VerifyCompacted(buf); err != nil {
			return scanResult{validSize: pos, err: fmt.Errorf("batch at %d: %w", pos, err)}
		}
		if want := s.next.Load(); h.BaseOffset != want {
			return scanResult{validSize: pos, err: fmt.Errorf("batch at %d has base offset %d, want %d", pos, h.BaseOffset, want)}
		}
		s.track(h, pos, interval)
		s.next.Store(h.LastOffset() + 1)
		pos += size
		s.size.Store(pos)
	}
	return scanResult{validSize: pos}
}

// writeFileSync writes a whole file durably via a temp file and rename.
// The caller syncs the directory.
func writeFileSync(fs vfs.FS, name string, data []byte) error {
	return writeFileReplace(fs, name, data, true)
}

// writeFileReplace writes data to a temporary, fsyncs it if sync is set,
// and renames it over name.
func writeFileReplace(fs vfs.FS, name string, data []byte, sync bool) error {
	tmp := name + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fs.Rename(tmp, name)
}

func readFile(fs vfs.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	if n > 1<<30 {
		return nil, fmt.Errorf("commitlog: %s: %d bytes is too large", name, n)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, err
	}
	return b, nil
}
