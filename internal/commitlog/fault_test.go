package commitlog

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// Injected EIO and ENOSPC: a failed fsync fails the log for good and is
// never followed by a durable report; a failed write is returned, leaves a
// valid prefix, and appends work again once the fault clears.

// faultEnv wraps e's filesystem with a Toggle for ops.
func faultEnv(e fsEnv, ops ...vfs.Op) (Options, *vfs.Toggle) {
	tog := vfs.NewToggle(ops...)
	o := e.opts()
	o.FS = vfs.NewErrorFS(e.fs, tog)
	return o, tog
}

func fileSize(t *testing.T, fsys vfs.FS, name string) int64 {
	t.Helper()
	st, err := fsys.Stat(name)
	must(t, err)
	return st.Size()
}

func TestSyncFailure(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		o, tog := faultEnv(e, vfs.OpSync)
		l := openLog(t, o)
		a := mkBatch(t, 1, 3, 100, 1)
		appendDurable(t, l, a)

		tog.Set(syscall.EIO)
		res := mustAppend(t, l, mkBatch(t, 2, 2, 100, 1))
		err := l.WaitDurable(context.Background(), res.LastOffset+1)
		wantErr(t, "WaitDurable after a failed fsync", err, ErrStorage)
		wantErr(t, "WaitDurable after a failed fsync", err, syscall.EIO)
		wantErr(t, "Err", l.Err(), ErrStorage)
		if d, hw := l.DurableOffset(), l.HighWatermark(); d != 3 || hw != 3 {
			t.Fatalf("after a failed fsync: durable %d high watermark %d, want 3 3", d, hw)
		}
		_, err = l.Append(mkBatch(t, 3, 1, 10, 1))
		wantErr(t, "Append after a failed fsync", err, ErrStorage)
		tog.Clear()
		_, err = l.Append(mkBatch(t, 4, 1, 10, 1))
		wantErr(t, "Append after the fault cleared", err, ErrStorage)
		wantErr(t, "WaitDurable after the fault cleared", l.WaitDurable(context.Background(), 5), ErrStorage)
		if d := l.DurableOffset(); d != 3 {
			t.Fatalf("durable offset moved to %d after the failure", d)
		}
		must(t, l.WaitDurable(context.Background(), 3)) // durable before the failure
		equalBatches(t, "readers see only durable data", readAll(t, l), [][]byte{a})
		must(t, l.Close())

		// A new Log over the same files recovers: on the OS the unsynced
		// batch may have reached the disk; in memory it did not.
		if e.mem != nil {
			o.FS = e.mem.CrashStrict()
			l2 := openLog(t, o)
			equalBatches(t, "after crash", readAll(t, l2), [][]byte{a})
		}
		l2 := openLog(t, e.opts())
		if hw := l2.HighWatermark(); hw != 3 && hw != 5 {
			t.Fatalf("reopened high watermark %d", hw)
		}
		res = appendDurable(t, l2, mkBatch(t, 5, 1, 10, 1))
		if res.BaseOffset != l2.HighWatermark()-1 {
			t.Fatalf("append after reopen at %d", res.BaseOffset)
		}
	})
}

func TestSyncFailureAtRoll(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		// Under Never the roll's fsync is the only one: it must fail the
		// log, and nothing past the last good fsync becomes durable.
		o, tog := faultEnv(e, vfs.OpSync)
		bs := len(mkBatch(t, 0, 1, 1024, 0))
		o.SegmentBytes = int64(2*bs + 1)
		o.Durability = Never
		l := openLog(t, o)
		mustAppend(t, l, mkBatch(t, 1, 1, 1024, 0))
		mustAppend(t, l, mkBatch(t, 2, 1, 1024, 0))
		tog.Set(syscall.EIO)
		_, err := l.Append(mkBatch(t, 3, 1, 1024, 0))
		wantErr(t, "Append whose roll cannot fsync", err, ErrStorage)
		wantErr(t, "Append whose roll cannot fsync", err, syscall.EIO)
		wantErr(t, "Err", l.Err(), ErrStorage)
		tog.Clear()
		_, err = l.Append(mkBatch(t, 4, 1, 1024, 0))
		wantErr(t, "Append after a failed roll", err, ErrStorage)
		if d := l.DurableOffset(); d != 0 {
			t.Fatalf("durable offset %d, want 0", d)
		}
		if got := bases(l); !slices.Equal(got, []int64{0}) {
			t.Fatalf("segments %v after a failed roll", got)
		}
		if e.mem != nil {
			o.FS = e.mem.CrashStrict()
			if hw := openLog(t, o).HighWatermark(); hw != 0 {
				t.Fatalf("recovered %d records that were never synced", hw)
			}
		}
	})
}

// TestSyncFailureConcurrent fails one fsync in the middle of concurrent
// appends and rolls: no durable report may follow it.
func TestSyncFailureConcurrent(t *testing.T) {
	for run := range 20 {
		m := vfs.NewMem()
		var (
			syncs        atomic.Int64
			armed        atomic.Bool
			failAt       = int64(3 + run%7)
			durableAtErr atomic.Int64
			lp           atomic.Pointer[Log]
		)
		durableAtErr.Store(-1)
		inj := vfs.InjectorFunc(func(op vfs.Op, path string) error {
			if op != vfs.OpSync || !armed.Load() || filepath.Ext(path) != logSuffix {
				return nil
			}
			if syncs.Add(1) == failAt {
				durableAtErr.Store(lp.Load().DurableOffset())
				return syscall.EIO
			}
			return nil
		})
		bs := len(mkBatch(t, 0, 1, 300, 0))
		l := openLog(t, Options{FS: vfs.NewErrorFS(m, inj), Dir: "/f/p", SegmentBytes: int64(3 * bs), RetentionMs: -1})
		lp.Store(l)
		armed.Store(true)
		var (
			mu    sync.Mutex
			acked []int64
		)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 30 {
					res, err := l.Append(mkBatch(t, g*100+i, 1, 300, 0))
					if err != nil {
						if !errors.Is(err, ErrStorage) {
							t.Errorf("Append: %v", err)
						}
						return
					}
					err = l.WaitDurable(context.Background(), res.LastOffset+1)
					if err != nil {
						if !errors.Is(err, ErrStorage) {
							t.Errorf("WaitDurable: %v", err)
						}
						return
					}
					mu.Lock()
					acked = append(acked, res.LastOffset)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		wantErr(t, "Err", l.Err(), syscall.EIO)
		d := l.DurableOffset()
		if at := durableAtErr.Load(); d != at {
			t.Fatalf("run %d: durable offset %d at the failed fsync, %d now: a later fsync was trusted", run, at, d)
		}
		for _, a := range acked {
			if a >= d {
				t.Fatalf("run %d: offset %d acknowledged, durable offset %d", run, a, d)
			}
		}
		must(t, l.Close())
		l2 := openLog(t, Options{FS: m.CrashStrict(), Dir: "/f/p"})
		if hw := l2.HighWatermark(); hw < d {
			t.Fatalf("run %d: recovered %d, durable was %d", run, hw, d)
		}
	}
}

func TestWriteFailure(t *testing.T) {
	for _, partial := range []bool{false, true} {
		forEachFS(t, func(t *testing.T, e fsEnv) {
			tog := vfs.NewToggle(vfs.OpWrite, vfs.OpCreate)
			var inj vfs.Injector = tog
			if partial {
				inj = vfs.WithPartialWrite(tog, func(n int) int { return n / 2 })
			}
			o := e.opts()
			o.FS = vfs.NewErrorFS(e.fs, inj)
			bs := len(mkBatch(t, 0, 1, 1024, 0))
			o.SegmentBytes = int64(3*bs + 1)
			l := openLog(t, o)
			a := mkBatch(t, 1, 1, 1024, 0)
			appendDurable(t, l, a)
			seg0 := l.active.path(logSuffix)

			tog.Set(syscall.ENOSPC)
			for range 3 {
				_, err := l.Append(mkBatch(t, 2, 1, 1024, 0))
				wantErr(t, "Append on a full disk", err, syscall.ENOSPC)
				wantErr(t, "Append on a full disk", err, ErrStorage)
			}
			if err := l.Err(); err != nil {
				t.Fatalf("a failed write failed the log: %v", err)
			}
			if end, sz := l.EndOffset(), fileSize(t, e.fs, seg0); end != 1 || sz != int64(bs) {
				t.Fatalf("after failed writes: end %d, file %d bytes; want 1, %d", end, sz, bs)
			}
			tog.Clear()
			b := mkBatch(t, 3, 1, 1024, 0)
			if res := appendDurable(t, l, b); res.BaseOffset != 1 {
				t.Fatalf("append after the fault cleared got %d, want 1", res.BaseOffset)
			}
			c := mkBatch(t, 4, 1, 1024, 0)
			appendDurable(t, l, c)

			// A roll on a full disk: creating the segment fails.
			tog.Set(syscall.ENOSPC)
			_, err := l.Append(mkBatch(t, 5, 1, 1024, 0))
			wantErr(t, "Append that rolls on a full disk", err, syscall.ENOSPC)
			if l.Err() != nil || l.EndOffset() != 3 {
				t.Fatalf("after a failed roll: Err %v, end %d", l.Err(), l.EndOffset())
			}
			tog.Clear()
			d := mkBatch(t, 6, 1, 1024, 0)
			if res := appendDurable(t, l, d); res.BaseOffset != 3 {
				t.Fatalf("append after the failed roll got %d, want 3", res.BaseOffset)
			}
			if got := bases(l); !slices.Equal(got, []int64{0, 3}) {
				t.Fatalf("segments %v, want [0 3]", got)
			}
			want := [][]byte{a, b, c, d}
			equalBatches(t, "after write faults", readAll(t, l), want)
			if e.mem != nil {
				o.FS = e.mem.CrashStrict()
				equalBatches(t, "after crash", readAll(t, openLog(t, o)), want)
			}
			closeLog(t, l)
			equalBatches(t, "after reopen", readAll(t, openLog(t, e.opts())), want)
		})
	}
}

// TestWriteFailureUnrecoverable: a partial write that cannot be taken back
// (the truncate fails too) fails the log; recovery drops the fragment.
func TestWriteFailureUnrecoverable(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		e.needMem(t)
		tog := vfs.NewToggle(vfs.OpWrite, vfs.OpTruncate)
		o := e.opts()
		o.FS = vfs.NewErrorFS(e.fs, vfs.WithPartialWrite(tog, func(n int) int { return n - 1 }))
		l := openLog(t, o)
		a := mkBatch(t, 1, 2, 100, 0)
		appendDurable(t, l, a)
		tog.Set(syscall.EIO)
		_, err := l.Append(mkBatch(t, 2, 2, 100, 0))
		wantErr(t, "Append", err, ErrStorage)
		wantErr(t, "Err", l.Err(), ErrStorage)
		tog.Clear()
		_, err = l.Append(mkBatch(t, 3, 1, 10, 0))
		wantErr(t, "Append after the log failed", err, ErrStorage)
		// The fragment may be durable (a later fsync of the file); it is
		// a torn tail to recovery.
		f, err := e.mem.OpenReadWrite(l.active.path(logSuffix))
		must(t, err)
		must(t, f.Sync())
		must(t, f.Close())
		o.FS = e.mem.CrashStrict()
		l2 := openLog(t, o)
		equalBatches(t, "after recovery", readAll(t, l2), [][]byte{a})
		if res := appendDurable(t, l2, mkBatch(t, 4, 1, 10, 0)); res.BaseOffset != 2 {
			t.Fatalf("append after recovery got %d", res.BaseOffset)
		}
	})
}

func TestSyncDirFailureAtRoll(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		o, tog := faultEnv(e, vfs.OpSyncDir)
		bs := len(mkBatch(t, 0, 1, 1024, 0))
		o.SegmentBytes = int64(bs + 1)
		l := openLog(t, o)
		appendDurable(t, l, mkBatch(t, 1, 1, 1024, 0))
		tog.Set(syscall.EIO)
		_, err := l.Append(mkBatch(t, 2, 1, 1024, 0))
		wantErr(t, "Append whose roll cannot sync the directory", err, ErrStorage)
		if got := bases(l); !slices.Equal(got, []int64{0}) || l.Err() != nil {
			t.Fatalf("segments %v Err %v after a failed roll", got, l.Err())
		}
		if _, err := e.fs.Stat(filepath.Join(e.dir, segmentName(1, logSuffix))); err == nil {
			t.Fatal("the half-made segment was left behind")
		}
		tog.Clear()
		if res := appendDurable(t, l, mkBatch(t, 3, 1, 1024, 0)); res.BaseOffset != 1 {
			t.Fatalf("append after the fault got %d", res.BaseOffset)
		}
		if got := bases(l); !slices.Equal(got, []int64{0, 1}) {
			t.Fatalf("segments %v", got)
		}
	})
}

// TestIndexWriteFailure: a sealed segment whose indexes could not be
// written is still sealed; the next Open rebuilds them.
func TestIndexWriteFailure(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		o, tog := faultEnv(e, vfs.OpRename)
		tog.Set(syscall.ENOSPC)
		l, _, batches := sevenBatches(t, e, func(x *Options) { x.FS = o.FS })
		if got := listDir(t, e.fs, e.dir); slices.ContainsFunc(got, func(n string) bool { return strings.HasSuffix(n, indexSuffix) }) {
			t.Fatalf("index files written despite the fault: %v", got)
		}
		_, err := l.DeleteRecordsBefore(2)
		wantErr(t, "DeleteRecordsBefore without a checkpoint", err, ErrStorage)
		if s := l.LogStartOffset(); s != 0 {
			t.Fatalf("log start %d after a failed checkpoint", s)
		}
		tog.Clear()
		closeLog(t, l)
		l = openLog(t, e.opts())
		equalBatches(t, "after rebuild", readAll(t, l), batches)
		// The active segment's index files are from the clean Close.
		want := append(segFiles(6, 0, 3), segmentName(6, indexSuffix), segmentName(6, timeIndexSuffix))
		slices.Sort(want)
		if got := listDir(t, e.fs, e.dir); !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
	})
}

// TestOpenFailures: I/O errors while opening are reported, never taken
// for damage: nothing is truncated and a later Open recovers everything.
func TestOpenFailures(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		e.needMem(t)
		_, o, batches := sevenBatches(t, e, nil)
		crashed := e.mem.CrashStrict()
		for _, op := range []vfs.Op{vfs.OpMkdir, vfs.OpList, vfs.OpOpen, vfs.OpStat, vfs.OpRead, vfs.OpSync, vfs.OpSyncDir} {
			for skip := range 10 {
				m := crashed.CrashStrict()
				inj, off := failNth(op, skip)
				o.FS = vfs.NewErrorFS(m, vfs.InjectorFunc(inj))
				l, err := Open(o)
				off()
				if err == nil {
					// The fault hit something recovery can do without
					// (an index file), or fewer ops of this kind happened.
					equalBatches(t, "Open despite a failing "+op.String(), readAll(t, l), batches)
					must(t, l.Close())
				} else {
					wantErr(t, "Open with a failing "+op.String(), err, syscall.EIO)
				}
				o.FS = m
				equalBatches(t, "Open after a failed "+op.String(), readAll(t, openLog(t, o)), batches)
			}
		}
	})
}

// failNth fails the (n+1)th operation of kind op with EIO, until off is
// called.
func failNth(op vfs.Op, n int) (inj func(vfs.Op, string) error, off func()) {
	var count atomic.Int64
	var stopped atomic.Bool
	return func(o vfs.Op, _ string) error {
		if o == op && !stopped.Load() && count.Add(1) == int64(n+1) {
			return syscall.EIO
		}
		return nil
	}, func() { stopped.Store(true) }
}

// TestPreallocationFailure: reserving space is best effort. A failed
// fallocate (a full disk) neither fails nor delays the append; the log
// stops trying for the rest of that segment and tries again in the next.
func TestPreallocationFailure(t *testing.T) {
	m := vfs.NewMem()
	var calls, failing atomic.Int64
	failing.Store(1)
	inj := vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op != vfs.OpPreallocate {
			return nil
		}
		calls.Add(1)
		if failing.Load() == 1 {
			return syscall.ENOSPC
		}
		return nil
	})
	b := mkBatch(t, 0, 4, 1000, 1000)
	l := openLog(t, Options{FS: vfs.NewErrorFS(m, inj), Dir: "/p", SegmentBytes: int64(3 * len(b)), RetentionMs: -1})
	var want [][]byte
	for i := range 3 {
		b := mkBatch(t, i, 4, 1000, 1000)
		appendDurable(t, l, b)
		want = append(want, b)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d fallocate calls in the first segment, want 1 (no retry after it failed)", n)
	}
	failing.Store(0)
	for i := 3; i < 5; i++ { // rolls to a new segment
		b := mkBatch(t, i, 4, 1000, 1000)
		appendDurable(t, l, b)
		want = append(want, b)
	}
	if len(bases(l)) < 2 {
		t.Fatalf("no roll: segments %v", bases(l))
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d fallocate calls, want a second one in the new segment", n)
	}
	equalBatches(t, "after a failed preallocation", readAll(t, l), want)
}
