package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weirhq/weir/internal/vfs"
)

const (
	cleanMarker  = ".clean"
	logStartFile = "log-start-offset"
)

func (l *Log) path(name string) string { return filepath.Join(l.opts.Dir, name) }

// Open opens the log in opts.Dir, creating it if needed, and recovers it:
// after a clean Close the indexes are trusted; otherwise the active
// segment is scanned and truncated at its first invalid batch (a torn
// write). Sealed segments with missing or damaged indexes are rescanned;
// damage inside them is reported as ErrCorrupt and nothing is truncated.
func Open(opts Options) (*Log, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	l := &Log{
		opts:     opts,
		notifyCh: make(chan struct{}),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	if err := l.recover(); err != nil {
		for _, s := range *l.segsOrEmpty() {
			s.release()
		}
		return nil, err
	}
	if l.syncerRunning() {
		go l.syncLoop()
	}
	return l, nil
}

func (l *Log) segsOrEmpty() *[]*segment {
	if p := l.segs.Load(); p != nil {
		return p
	}
	return &[]*segment{}
}

func (l *Log) recover() error {
	fsys, dir := l.opts.FS, l.opts.Dir
	if err := vfs.MkdirAllDurable(fsys, dir, 0o755); err != nil {
		return fmt.Errorf("commitlog: create %s: %w", dir, err)
	}
	names, err := fsys.List(dir)
	if err != nil {
		return fmt.Errorf("commitlog: list %s: %w", dir, err)
	}
	var bases []int64
	clean := false
	for _, n := range names {
		switch {
		case n == cleanMarker:
			clean = true
		case strings.HasSuffix(n, ".tmp"):
			_ = fsys.Remove(filepath.Join(dir, n))
		default:
			if b, ok := parseSegmentName(n); ok {
				bases = append(bases, b)
			}
		}
	}
	slices.Sort(bases)
	ckStart, err := readLogStart(fsys, l.path(logStartFile))
	if err != nil {
		return err
	}

	segs := make([]*segment, 0, len(bases)+1)
	l.segs.Store(&segs)
	var prevNext int64 = -1
	for i, base := range bases {
		s, err := l.openSegment(base)
		if err != nil {
			return err
		}
		segs = append(segs, s)
		l.segs.Store(&segs)
		size, err := s.f.Size()
		if err != nil {
			return fmt.Errorf("commitlog: size of %s: %w", s.path(logSuffix), err)
		}
		last := i == len(bases)-1
		if !last || clean {
			if s.loadIndexes(size) {
				goto loaded
			}
		}
		if res := s.scan(size, l.opts.IndexIntervalBytes); res.validSize != size {
			if res.ioErr {
				return fmt.Errorf("%w: scan %s: %w", ErrStorage, s.path(logSuffix), res.err)
			}
			if !last {
				return fmt.Errorf("%w: sealed segment %s: %v", ErrCorrupt, s.path(logSuffix), res.err)
			}
			l.opts.Logger.Warn("commitlog: truncating torn tail of active segment",
				"segment", s.path(logSuffix), "valid_bytes", res.validSize, "dropped_bytes", size-res.validSize, "reason", res.err)
			if err := s.f.Truncate(res.validSize); err != nil {
				return fmt.Errorf("commitlog: truncate %s: %w", s.path(logSuffix), err)
			}
		} else if !last {
			// Write back the missing or damaged indexes so that the next
			// Open need not scan again (the directory is synced below).
			if err := s.writeIndexes(); err != nil {
				l.opts.Logger.Warn("commitlog: rewriting indexes of sealed segment", "segment", s.path(logSuffix), "err", err)
			}
		}
	loaded:
		if prevNext >= 0 && base < prevNext && !last && s.next.Load() <= prevNext {
			// A segment the previous one wholly covers is left over from a
			// clean that merged them (clean.go) and crashed before
			// removing it: the merged segment holds its offsets.
			l.opts.Logger.Info("commitlog: removing a segment a cleaned one replaced", "segment", s.path(logSuffix))
			segs = segs[:len(segs)-1]
			l.segs.Store(&segs)
			_ = s.f.Close()
			for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
				if err := fsys.Remove(s.path(suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("commitlog: remove %s: %w", s.path(suf), err)
				}
			}
			continue
		}
		if prevNext >= 0 && base < prevNext {
			return fmt.Errorf("%w: segment %s starts at %d, before the previous segment's end %d", ErrCorrupt, s.path(logSuffix), base, prevNext)
		}
		prevNext = s.next.Load()
	}

	if len(segs) == 0 {
		s, err := l.createSegment(max(ckStart, 0))
		if err != nil {
			return err
		}
		segs = append(segs, s)
		l.segs.Store(&segs)
	}
	l.active = segs[len(segs)-1]
	// Data written by a previous process may sit in the page cache only:
	// make it durable before anyone can see it.
	if err := l.active.f.Sync(); err != nil {
		return fmt.Errorf("%w: fdatasync %s: %w", ErrStorage, l.active.path(logSuffix), err)
	}
	l.written = mark{next: l.active.next.Load(), seg: l.active, pos: l.active.size.Load(), maxTs: l.active.maxTs.Load()}
	if ckStart > l.written.next {
		// The checkpoint outlived data that was never durable (a weaker
		// durability mode): skip ahead so no offset below it is reused.
		l.opts.Logger.Warn("commitlog: log start checkpoint beyond recovered end; skipping ahead",
			"dir", dir, "log_start", ckStart, "end", l.written.next)
		if err := l.rollTo(ckStart); err != nil {
			return err
		}
	}
	l.logStart.Store(max(segs[0].base, min(ckStart, l.written.next)))
	w := l.written
	l.visible.Store(&w)
	l.durable.Store(w.next)

	if clean {
		if err := fsys.Remove(l.path(cleanMarker)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("commitlog: remove clean marker: %w", err)
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("commitlog: sync dir %s: %w", dir, err)
	}
	return nil
}

func (l *Log) openSegment(base int64) (*segment, error) {
	s := &segment{base: base, dir: l.opts.Dir, fs: l.opts.FS}
	f, err := l.opts.FS.OpenReadWrite(s.path(logSuffix))
	if err != nil {
		return nil, fmt.Errorf("commitlog: open %s: %w", s.path(logSuffix), err)
	}
	s.f = f
	s.refs.Store(1)
	s.maxTs.Store(-1)
	s.next.Store(base)
	s.firstAppendMs = l.opts.Now().UnixMilli()
	return s, nil
}

func (l *Log) createSegment(base int64) (*segment, error) {
	s := &segment{base: base, dir: l.opts.Dir, fs: l.opts.FS}
	f, err := l.opts.FS.Create(s.path(logSuffix))
	if err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrStorage, s.path(logSuffix), err)
	}
	s.f = f
	s.refs.Store(1)
	s.maxTs.Store(-1)
	s.next.Store(base)
	return s, nil
}

// roll seals the active segment (fsync, indexes, directory) and starts a
// new one at the next offset. Called with l.mu held.
func (l *Log) roll() error { return l.rollTo(l.written.next) }

func (l *Log) rollTo(base int64) error {
	old := l.active
	l.trimPrealloc(old)
	if err := l.syncData(l.written, " at roll"); err != nil {
		return err
	}
	if err := old.writeIndexes(); err != nil {
		// Indexes can be rebuilt from the log; keep going without them.
		l.opts.Logger.Warn("commitlog: writing indexes of sealed segment", "segment", old.path(logSuffix), "err", err)
	}
	s, err := l.createSegment(base)
	if err != nil {
		return err
	}
	if err := l.opts.FS.SyncDir(l.opts.Dir); err != nil {
		_ = s.f.Close()
		_ = l.opts.FS.Remove(s.path(logSuffix))
		return fmt.Errorf("%w: sync dir %s: %w", ErrStorage, l.opts.Dir, err)
	}
	segs := append(slices.Clone(*l.segs.Load()), s)
	if old.size.Load() == 0 && old.base <= base {
		// An empty segment has nothing to seal; drop it.
		segs = slices.DeleteFunc(segs, func(x *segment) bool { return x == old })
		old.dead.Store(true)
		old.release()
	}
	l.segs.Store(&segs)
	l.active = s
	l.written = mark{next: base, seg: s, pos: 0, maxTs: -1}
	// A new segment tries preallocation again: a full disk may have
	// been freed meanwhile (an unsupported filesystem costs one failed
	// call per segment).
	l.noPrealloc = false
	return nil
}

// readLogStart reads the DeleteRecords checkpoint; -1 when absent. A
// damaged checkpoint is an error: silently ignoring it could resurrect
// deleted records.
func readLogStart(fsys vfs.FS, name string) (int64, error) {
	b, err := readFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("commitlog: read %s: %w", name, err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return 0, fmt.Errorf("%w: damaged checkpoint %s", ErrCorrupt, name)
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

func encodeLogStart(off int64) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(off))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}
