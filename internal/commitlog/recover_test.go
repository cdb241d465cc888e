package commitlog

import (
	"slices"
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// rewrite replaces a file's content through fsys, durably.
func rewrite(t *testing.T, fsys vfs.FS, name string, f func([]byte) []byte) {
	t.Helper()
	b, err := readFile(fsys, name)
	must(t, err)
	must(t, writeFileSync(fsys, name, f(b)))
}

func TestCorruptSealedSegment(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		e.needMem(t)
		for _, tc := range []struct {
			name   string
			crash  bool
			seg    int64
			damage func(t *testing.T, m *vfs.MemFS, name string, size int64)
		}{
			{"scribble first, clean", false, 0, func(t *testing.T, m *vfs.MemFS, name string, size int64) {
				must(t, m.Corrupt(name, size/2, []byte{0x5a}))
			}},
			{"scribble first, crash", true, 0, func(t *testing.T, m *vfs.MemFS, name string, size int64) {
				must(t, m.Corrupt(name, size/2, []byte{0x5a}))
			}},
			{"scribble second, crash", true, 3, func(t *testing.T, m *vfs.MemFS, name string, size int64) {
				must(t, m.Corrupt(name, size-100, []byte{1, 2, 3}))
			}},
			{"header of first batch", true, 0, func(t *testing.T, m *vfs.MemFS, name string, size int64) {
				must(t, m.Corrupt(name, 16, []byte{7})) // magic
			}},
			{"truncated", true, 0, func(t *testing.T, m *vfs.MemFS, name string, size int64) {
				f, err := m.OpenReadWrite(name)
				must(t, err)
				must(t, f.Truncate(size-10))
				must(t, f.Sync())
				must(t, f.Close())
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := vfs.NewMem()
				e := fsEnv{fs: m, mem: m, dir: "/c/p"}
				l, o, _ := sevenBatches(t, e, nil)
				if tc.crash {
					m = m.CrashStrict()
					o.FS = m
				} else {
					closeLog(t, l)
				}
				seg := &segment{base: tc.seg, dir: o.Dir}
				name := seg.path(logSuffix)
				st, err := m.Stat(name)
				must(t, err)
				tc.damage(t, m, name, st.Size())
				after, err := m.ReadFile(name)
				must(t, err)
				_ = m.Remove(seg.path(indexSuffix))
				_ = m.Remove(seg.path(timeIndexSuffix))
				before := listDir(t, m, o.Dir)
				l2, err := Open(o)
				if err == nil {
					_ = l2.Close()
				}
				wantErr(t, "Open over a damaged sealed segment", err, ErrCorrupt)
				got, err := m.ReadFile(name)
				must(t, err)
				if !slices.Equal(got, after) {
					t.Fatal("Open changed the damaged sealed segment")
				}
				if now := listDir(t, m, o.Dir); !slices.Equal(now, before) {
					t.Fatalf("files %v, were %v", now, before)
				}
			})
		}

		// A damaged DeleteRecords checkpoint is corruption too: ignoring
		// it could resurrect deleted records.
		l, o, _ := sevenBatches(t, e, nil)
		if _, err := l.DeleteRecordsBefore(2); err != nil {
			t.Fatal(err)
		}
		closeLog(t, l)
		must(t, e.mem.Corrupt(l.path(logStartFile), 3, []byte{9}))
		_, err := Open(o)
		wantErr(t, "Open with a damaged checkpoint", err, ErrCorrupt)
	})
}

// TestDamagedIndexRebuilt damages the index files of a sealed segment in
// every way recovery must notice, and checks that the log rebuilds them
// and answers exactly as before.
func TestDamagedIndexRebuilt(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		flip := func(i int) func([]byte) []byte {
			return func(b []byte) []byte {
				j := i
				if j < 0 {
					j += len(b)
				}
				b[j] ^= 0x10
				return b
			}
		}
		cut := func(n int) func([]byte) []byte { return func(b []byte) []byte { return b[:max(len(b)-n, 0)] } }
		type damage struct {
			suffix string
			f      func([]byte) []byte // nil: remove the file
		}
		for name, ds := range map[string][]damage{
			"index byte":          {{indexSuffix, flip(5)}},
			"index trailer":       {{indexSuffix, flip(-3)}},
			"timeindex byte":      {{timeIndexSuffix, flip(2)}},
			"index truncated":     {{indexSuffix, cut(3)}},
			"timeindex truncated": {{timeIndexSuffix, cut(1)}},
			"index empty":         {{indexSuffix, cut(1 << 20)}},
			"index missing":       {{indexSuffix, nil}},
			"timeindex missing":   {{timeIndexSuffix, nil}},
			"both missing":        {{indexSuffix, nil}, {timeIndexSuffix, nil}},
			"index garbage":       {{indexSuffix, func([]byte) []byte { return []byte("not an index at all, really") }}},
		} {
			t.Run(name, func(t *testing.T) {
				e := e
				e.dir += "-" + name
				l, o, batches := sevenBatches(t, e, nil)
				want := takeSnapshot(t, l)
				s0 := (*l.segs.Load())[0]
				wantIdx, wantTidx := slices.Clone(s0.idx), slices.Clone(s0.tidx)
				closeLog(t, l)
				for _, d := range ds {
					p := s0.path(d.suffix)
					if d.f == nil {
						must(t, e.fs.Remove(p))
					} else {
						rewrite(t, e.fs, p, d.f)
					}
				}
				chk := &segment{base: 0, dir: o.Dir, fs: o.FS}
				if chk.loadIndexes(s0.size.Load()) {
					t.Fatal("damaged index files still load")
				}
				l = openLog(t, o)
				want.check(t, "after rebuild", l)
				equalBatches(t, "after rebuild", readAll(t, l), batches)
				r0 := (*l.segs.Load())[0]
				if !slices.Equal(r0.idx, wantIdx) || !slices.Equal(r0.tidx, wantTidx) {
					t.Fatalf("rebuilt indexes %v %v, want %v %v", r0.idx, r0.tidx, wantIdx, wantTidx)
				}
				// Rebuilt indexes are written back.
				if !chk.loadIndexes(s0.size.Load()) || !slices.Equal(chk.idx, wantIdx) || !slices.Equal(chk.tidx, wantTidx) {
					t.Fatal("rebuilt index files were not written back")
				}
			})
		}

		// An index that is intact but describes another size (left over
		// from before the segment grew) is ignored.
		l, o, _ := sevenBatches(t, e, nil)
		s0 := (*l.segs.Load())[0]
		wantIdx := slices.Clone(s0.idx)
		closeLog(t, l)
		stale := &segment{base: 0, dir: o.Dir, fs: o.FS, idx: wantIdx[:2]}
		stale.size.Store(s0.size.Load() - 1)
		stale.next.Store(2)
		must(t, stale.writeIndexes())
		l = openLog(t, o)
		if r0 := (*l.segs.Load())[0]; !slices.Equal(r0.idx, wantIdx) || r0.next.Load() != 3 {
			t.Fatalf("stale index used: %v next %d", r0.idx, r0.next.Load())
		}

		// Leftover temporary files of an interrupted index or checkpoint
		// write are removed.
		closeLog(t, l)
		must(t, writeFileSync(e.fs, s0.path(indexSuffix)+".tmp", []byte("junk")))
		must(t, writeFileSync(e.fs, l.path(logStartFile)+".tmp", []byte("junk")))
		openLog(t, o)
		for _, n := range listDir(t, e.fs, e.dir) {
			if strings.HasSuffix(n, ".tmp") {
				t.Fatalf("temporary file %s survived Open", n)
			}
		}
	})
}
