package commitlog

import (
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// RollIfDue seals a non-empty active segment at segment.ms from its first
// append, without waiting for the next append, and makes it durable.
func TestRollIfDue(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		for _, d := range []Durability{Always, Interval, Never} {
			t.Run(d.String(), func(t *testing.T) {
				c := newClock(10_000)
				o := e.opts()
				o.Dir = filepath.Join(e.dir, d.String())
				o.Durability = d
				o.SegmentMs = 1000
				o.Now = c.now
				l := openLog(t, o)
				rollIfDue(t, l, false, "empty log")

				a := mkBatch(t, 1, 2, 100, 10_000)
				mustAppend(t, l, a)
				c.set(10_999)
				rollIfDue(t, l, false, "before segment.ms")
				if got := bases(l); !slices.Equal(got, []int64{0}) {
					t.Fatalf("segments %v before segment.ms, want [0]", got)
				}
				c.set(11_000)
				rollIfDue(t, l, true, "at segment.ms")
				if got := bases(l); !slices.Equal(got, []int64{0, 2}) {
					t.Fatalf("segments %v, want [0 2]", got)
				}
				if got, want := listDir(t, o.FS, o.Dir), segFiles(2, 0); !slices.Equal(got, want) {
					t.Fatalf("files %v, want %v", got, want)
				}
				// Sealed means synced: everything rolled is durable and
				// visible, whatever the durability policy.
				if dur, hw := l.DurableOffset(), l.HighWatermark(); dur != 2 || hw != 2 {
					t.Fatalf("after the roll: durable %d high watermark %d, want 2 2", dur, hw)
				}
				c.set(50_000)
				rollIfDue(t, l, false, "empty active segment")

				// The age counts from the new segment's first append, and
				// SetLimits changes segment.ms of the open log.
				b := mkBatch(t, 2, 1, 100, 50_000)
				if res := mustAppend(t, l, b); res.BaseOffset != 2 {
					t.Fatalf("append after the roll at %d, want 2", res.BaseOffset)
				}
				must(t, l.SetLimits(Limits{SegmentMs: 100}))
				c.set(50_099)
				rollIfDue(t, l, false, "before the new segment.ms")
				c.set(50_100)
				rollIfDue(t, l, true, "at the new segment.ms")
				if got := bases(l); !slices.Equal(got, []int64{0, 2, 3}) {
					t.Fatalf("segments %v, want [0 2 3]", got)
				}
				equalBatches(t, "after the rolls", readAll(t, l), [][]byte{a, b})

				closeLog(t, l)
				_, err := l.RollIfDue()
				wantErr(t, "RollIfDue after Close", err, ErrClosed)
			})
		}
	})
}

func rollIfDue(t *testing.T, l *Log, want bool, what string) {
	t.Helper()
	got, err := l.RollIfDue()
	if err != nil || got != want {
		t.Fatalf("%s: RollIfDue = %v, %v; want %v", what, got, err, want)
	}
}

// A power loss right after RollIfDue keeps every record the roll sealed,
// with the sealed segment's indexes, even under Never where nothing else
// made them durable; what was appended after it may go.
func TestRollIfDueCrash(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		e.needMem(t)
		for _, d := range []Durability{Always, Never} {
			t.Run(d.String(), func(t *testing.T) {
				c := newClock(0)
				o := e.opts()
				o.Dir = filepath.Join(e.dir, d.String())
				o.Durability = d
				o.SegmentMs = 500
				o.IndexIntervalBytes = 1
				o.Now = c.now
				l := openLog(t, o)
				var sealed [][]byte
				for i := range 3 {
					b := mkBatch(t, i, 2, 200, int64(10*i))
					mustAppend(t, l, b)
					sealed = append(sealed, b)
				}
				c.set(500)
				rollIfDue(t, l, true, "idle segment")
				unsynced := mkBatch(t, 9, 1, 200, 500)
				mustAppend(t, l, unsynced)

				o.FS = e.mem.CrashStrict()
				l2 := openLog(t, o)
				if got := bases(l2); !slices.Equal(got, []int64{0, 6}) {
					t.Fatalf("segments after crash %v, want [0 6]", got)
				}
				if got, want := listDir(t, o.FS, o.Dir), segFiles(6, 0); !slices.Equal(got, want) {
					t.Fatalf("files after crash %v, want %v", got, want)
				}
				// Under Always the group committer may have synced the
				// last batch before the crash image was taken.
				got, want := readAll(t, l2), sealed
				if d == Always && len(got) == len(sealed)+1 {
					want = append(slices.Clone(sealed), unsynced)
				}
				equalBatches(t, "after crash", got, want)
				if off, ts, found, err := l2.OffsetForTimestamp(20); err != nil || !found || off != 4 || ts != 20 {
					t.Fatalf("OffsetForTimestamp(20) after crash = %d, %d, %v, %v; want 4, 20, true", off, ts, found, err)
				}
			})
		}
	})
}

// A failed fsync at the roll fails the log; nothing rolls.
func TestRollIfDueSyncFailure(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		o, tog := faultEnv(e, vfs.OpSync)
		c := newClock(0)
		o.SegmentMs = 100
		o.Now = c.now
		l := openLog(t, o)
		appendDurable(t, l, mkBatch(t, 1, 1, 10, 0))
		tog.Set(syscall.EIO)
		c.set(100)
		_, err := l.RollIfDue()
		wantErr(t, "RollIfDue with a failing fsync", err, ErrStorage)
		wantErr(t, "Err", l.Err(), ErrStorage)
		tog.Clear()
		_, err = l.RollIfDue()
		wantErr(t, "RollIfDue of a failed log", err, ErrStorage)
		if got := bases(l); !slices.Equal(got, []int64{0}) {
			t.Fatalf("segments %v, want [0]", got)
		}
	})
}

// The scenario at the log: retention.ms=2000, segment.ms=500 and
// nothing appended after the first records. A check rolls the idle
// segment; a later one deletes it once its newest record is past 2 s.
func TestIdleRollThenRetention(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		c := newClock(0)
		o := e.opts()
		o.SegmentMs = 500
		o.RetentionMs = 2000
		o.Now = c.now
		l := openLog(t, o)
		appendDurable(t, l, mkBatch(t, 1, 3, 100, 0)) // timestamps 0, 1, 2
		check := func(at int64, rolled bool, deleted int) {
			t.Helper()
			c.set(at)
			rollIfDue(t, l, rolled, "retention check")
			if n, err := l.EnforceRetention(); n != deleted || err != nil {
				t.Fatalf("at %d: EnforceRetention = %d, %v; want %d", at, n, err, deleted)
			}
		}
		check(499, false, 0)
		check(500, true, 0)
		if got := bases(l); !slices.Equal(got, []int64{0, 3}) {
			t.Fatalf("segments %v, want [0 3]", got)
		}
		check(2002, false, 0)
		check(2003, false, 1)
		if s, hw := l.LogStartOffset(), l.HighWatermark(); s != 3 || hw != 3 {
			t.Fatalf("log start %d high watermark %d, want 3 3", s, hw)
		}
		_, err := l.Read(0, 1<<20)
		wantErr(t, "Read of a deleted offset", err, ErrOffsetOutOfRange)
		if got := readAll(t, l); len(got) != 0 {
			t.Fatalf("%d batches left, want none", len(got))
		}
		if res := appendDurable(t, l, mkBatch(t, 2, 1, 100, 2003)); res.BaseOffset != 3 {
			t.Fatalf("append after retention at %d, want 3", res.BaseOffset)
		}
	})
}

// Retention deletes the active segment as Kafka's does: when every segment
// before it has gone and its newest record is past retention.ms, never by
// retention.bytes. The log start survives a crash.
func TestRetentionActiveSegment(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		c := newClock(0)
		o := e.opts()
		o.RetentionMs = 1000
		o.Now = c.now
		l := openLog(t, o)
		appendDurable(t, l, mkBatch(t, 1, 2, 100, 100)) // timestamps 100, 101
		c.set(1101)
		if n, err := l.EnforceRetention(); n != 0 || err != nil {
			t.Fatalf("EnforceRetention at the limit = %d, %v; want 0", n, err)
		}
		c.set(1102)
		if n, err := l.EnforceRetention(); n != 1 || err != nil {
			t.Fatalf("EnforceRetention = %d, %v; want 1", n, err)
		}
		if got := bases(l); !slices.Equal(got, []int64{2}) {
			t.Fatalf("segments %v, want [2]", got)
		}
		if s, hw, end := l.LogStartOffset(), l.HighWatermark(), l.EndOffset(); s != 2 || hw != 2 || end != 2 {
			t.Fatalf("log start %d high watermark %d end %d, want 2 2 2", s, hw, end)
		}
		if got, want := listDir(t, e.fs, e.dir), segFiles(2); !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
		if n, err := l.EnforceRetention(); n != 0 || err != nil {
			t.Fatalf("EnforceRetention of an empty active segment = %d, %v", n, err)
		}
		if e.mem != nil {
			o2 := o
			o2.FS = e.mem.CrashStrict()
			l2 := openLog(t, o2)
			if s, hw := l2.LogStartOffset(), l2.HighWatermark(); s != 2 || hw != 2 {
				t.Fatalf("after crash: log start %d high watermark %d, want 2 2", s, hw)
			}
		}

		// Not by size, however small the limit.
		a := mkBatch(t, 2, 1, 100, 1102)
		appendDurable(t, l, a)
		must(t, l.SetLimits(Limits{RetentionMs: -1, RetentionBytes: 1}))
		if n, err := l.EnforceRetention(); n != 0 || err != nil {
			t.Fatalf("EnforceRetention by bytes = %d, %v; want 0", n, err)
		}
		// Not while a segment before it is kept (a timestamp ahead).
		must(t, l.SetLimits(Limits{SegmentMs: 1, RetentionBytes: -1}))
		c.set(1103)
		rollIfDue(t, l, true, "segment.ms 1")
		appendDurable(t, l, mkBatch(t, 3, 1, 100, 99_999)) // a timestamp ahead: segment 3 is kept
		c.set(1104)
		rollIfDue(t, l, true, "segment.ms 1")
		appendDurable(t, l, mkBatch(t, 4, 1, 100, 5))
		must(t, l.SetLimits(Limits{RetentionMs: 1000}))
		c.set(50_000)
		if n, err := l.EnforceRetention(); n != 1 || err != nil {
			t.Fatalf("EnforceRetention = %d, %v; want 1 (segment 2 only)", n, err)
		}
		if got := bases(l); !slices.Equal(got, []int64{3, 4}) {
			t.Fatalf("segments %v, want [3 4]", got)
		}
	})
}
