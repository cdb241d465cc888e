package commitlog

import (
	"errors"
	"fmt"
	"slices"
)

// RollIfDue seals the active segment, as an append would, when it holds
// records and its first append was at least segment.ms (Options.SegmentMs,
// as SetLimits last changed it) before Options.Now; it reports whether it
// rolled. The roll is the append path's: under the append lock, the sealed
// segment fsynced with its indexes written and the directory synced, so
// every record it holds is durable and visible when it returns. Appends
// roll only when the next one arrives; calling this periodically makes an
// idle partition's records a sealed segment that retention and the
// cleaner can act on. A failed log returns its error and rolls nothing.
func (l *Log) RollIfDue() (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, ErrClosed
	}
	if err := l.Err(); err != nil {
		return false, err
	}
	if l.active.size.Load() == 0 || l.opts.Now().UnixMilli()-l.active.firstAppendMs < l.opts.SegmentMs {
		return false, nil
	}
	if err := l.roll(); err != nil {
		return false, err
	}
	return true, nil
}

// EnforceRetention deletes the oldest segments that retention.ms or
// retention.bytes expire, and returns how many it removed. Sealed
// segments go by either limit. The active segment goes only as Kafka's
// does: when every segment before it has gone and its newest record is
// past retention.ms, it is rolled (synced, as at any roll) and deleted,
// leaving an empty active segment at the log end; retention.bytes never
// removes it. Readers still holding a removed segment finish their reads;
// its files go when the last one lets go.
func (l *Log) EnforceRetention() (int, error) {
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
	expired := func(s *segment) bool {
		return l.opts.RetentionMs >= 0 && s.maxTs.Load() >= 0 && s.maxTs.Load() < nowMs-l.opts.RetentionMs
	}
	n := 0
	for _, s := range segs[:len(segs)-1] {
		byBytes := l.opts.RetentionBytes > 0 && total-s.size.Load() >= l.opts.RetentionBytes
		if !expired(s) && !byBytes {
			break
		}
		total -= s.size.Load()
		n++
	}
	if n == len(segs)-1 && l.active.size.Load() > 0 && expired(l.active) && l.Err() == nil {
		if err := l.roll(); err != nil {
			if n == 0 {
				return 0, err
			}
			return n, errors.Join(err, l.dropSegments(n, segs[n].base))
		}
		segs = *l.segs.Load()
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
	l.segMu.Lock()
	defer l.segMu.Unlock()
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
