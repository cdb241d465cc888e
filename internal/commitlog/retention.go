package commitlog

import (
	"fmt"
	"slices"
)

// EnforceRetention deletes the oldest sealed segments that retention.ms
// or retention.bytes expire, and returns how many it removed. The active
// segment is never deleted. Readers still holding a removed segment finish
// their reads; its files go when the last one lets go.
func (l *Log) EnforceRetention() (int, error) {
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
		byTime := l.opts.RetentionMs >= 0 && s.maxTs.Load() >= 0 && s.maxTs.Load() < nowMs-l.opts.RetentionMs
		byBytes := l.opts.RetentionBytes > 0 && total-s.size.Load() >= l.opts.RetentionBytes
		if !byTime && !byBytes {
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

// DeleteRecordsBefore advances the log start offset to offset (-1 means
// the high watermark), persisting it, and deletes segments wholly below
// it. It returns the new log start offset.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	hw := l.visible.Load().next
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return 0, fmt.Errorf("%w: delete before %d not in [0, %d]", ErrOffsetOutOfRange, offset, hw)
	}
	if offset <= l.logStart.Load() {
		return l.logStart.Load(), nil
	}
	if err := writeFileSync(l.opts.FS, l.path(logStartFile), encodeLogStart(offset)); err != nil {
		return 0, fmt.Errorf("%w: checkpoint log start: %w", ErrStorage, err)
	}
	if err := l.opts.FS.SyncDir(l.opts.Dir); err != nil {
		return 0, fmt.Errorf("%w: sync dir: %w", ErrStorage, err)
	}
	l.logStart.Store(offset)
	segs := *l.segs.Load()
	n := 0
	for i := 0; i < len(segs)-1 && segs[i+1].base <= offset; i++ {
		n++
	}
	if n > 0 {
		if err := l.dropSegments(n, offset); err != nil {
			return offset, err
		}
	}
	l.broadcast()
	return offset, nil
}

// dropSegments removes the n oldest segments and raises the log start to
// at least newStart. Called with l.mu held.
func (l *Log) dropSegments(n int, newStart int64) error {
	segs := *l.segs.Load()
	removed := segs[:n]
	rest := slices.Clone(segs[n:])
	l.segs.Store(&rest)
	if newStart > l.logStart.Load() {
		l.logStart.Store(newStart)
	}
	for _, s := range removed {
		s.dead.Store(true)
		s.release()
	}
	if err := l.opts.FS.SyncDir(l.opts.Dir); err != nil {
		return fmt.Errorf("%w: sync dir after retention: %w", ErrStorage, err)
	}
	return nil
}
