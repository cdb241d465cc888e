package commitlog

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// The behaviour suite: every test here runs on the in-memory and the OS
// filesystem (tests needing crash simulation skip on the OS one).

func TestAppendRead(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		l := openLog(t, e.opts())
		b0, b1, b2 := mkBatch(t, 0, 2, 100, 10), mkBatch(t, 1, 1, 100, 20), mkBatch(t, 2, 5, 100, 30)
		in := slices.Concat(b0, b1, b2)
		res := appendDurable(t, l, in)
		if res.BaseOffset != 0 || res.LastOffset != 7 || res.AppendTimeMs != -1 || res.LogStartOffset != 0 {
			t.Fatalf("first append = %+v, want offsets [0, 7]", res)
		}
		// Offsets are assigned batch by batch, in place.
		parts := splitAll(t, in)
		for i, want := range []int64{0, 2, 3} {
			if got := header(t, parts[i]).BaseOffset; got != want {
				t.Fatalf("batch %d base offset %d, want %d", i, got, want)
			}
		}
		if hw, end := l.HighWatermark(), l.EndOffset(); hw != 8 || end != 8 {
			t.Fatalf("HighWatermark %d EndOffset %d, want 8", hw, end)
		}

		// Concurrent appenders, each Append carrying 1-3 batches.
		var (
			mu      sync.Mutex
			results []AppendResult
			stored  = map[int64][]byte{} // base offset → batch as stored
		)
		for _, p := range parts {
			stored[header(t, p).BaseOffset] = p
		}
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Go(func() {
				for i := range 8 {
					var in []byte
					nb := 1 + (g+i)%3
					for k := range nb {
						in = append(in, mkBatch(t, g*100+i*10+k, 1+(g+k)%4, 64, int64(100+i))...)
					}
					res, err := l.Append(in)
					if err != nil {
						t.Errorf("Append: %v", err)
						return
					}
					if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
						t.Errorf("WaitDurable: %v", err)
						return
					}
					mu.Lock()
					results = append(results, res)
					for _, p := range splitAll(t, in) {
						stored[header(t, p).BaseOffset] = p
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		slices.SortFunc(results, func(a, b AppendResult) int { return int(a.BaseOffset - b.BaseOffset) })
		next := int64(8)
		for _, r := range results {
			if r.BaseOffset != next || r.LastOffset < r.BaseOffset {
				t.Fatalf("append result %+v, want base %d: offsets must be contiguous, never shared", r, next)
			}
			next = r.LastOffset + 1
		}
		if hw := l.HighWatermark(); hw != next {
			t.Fatalf("HighWatermark %d, want %d", hw, next)
		}

		all := readAll(t, l)
		if len(all) != len(stored) {
			t.Fatalf("read %d batches, appended %d", len(all), len(stored))
		}
		for _, b := range all {
			if !bytes.Equal(b, stored[header(t, b).BaseOffset]) {
				t.Fatalf("batch at %d differs from what was appended", header(t, b).BaseOffset)
			}
		}
		// Every offset reads back starting with the batch holding it.
		for _, b := range all {
			h := header(t, b)
			for o := h.BaseOffset; o <= h.LastOffset(); o++ {
				data, err := l.Read(o, 1)
				if err != nil {
					t.Fatalf("Read(%d): %v", o, err)
				}
				if !bytes.Equal(data, b) {
					t.Fatalf("Read(%d, 1) returned %d bytes, want the one batch [%d, %d]", o, len(data), h.BaseOffset, h.LastOffset())
				}
			}
		}

		// maxBytes: whole batches only, but at least one.
		b0, b1, b2 = parts[0], parts[1], parts[2]
		for _, tc := range []struct {
			max  int
			want []byte
		}{
			{0, b0},
			{len(b0) - 1, b0},
			{len(b0), b0},
			{len(b0) + len(b1) - 1, b0},
			{len(b0) + len(b1), slices.Concat(b0, b1)},
			{len(b0) + len(b1) + len(b2) - 1, slices.Concat(b0, b1)},
			{len(b0) + len(b1) + len(b2), in},
		} {
			data, err := l.Read(1, tc.max)
			must(t, err)
			if !bytes.Equal(data, tc.want) {
				t.Fatalf("Read(1, %d) = %d bytes, want %d", tc.max, len(data), len(tc.want))
			}
		}
		data, err := l.Read(next, 1<<20)
		if err != nil || data != nil {
			t.Fatalf("Read at the high watermark = %d bytes, %v; want nil, nil", len(data), err)
		}
		_, err = l.Read(next+1, 1<<20)
		wantErr(t, "Read above the high watermark", err, ErrOffsetOutOfRange)
		_, err = l.Read(-1, 1<<20)
		wantErr(t, "Read(-1)", err, ErrOffsetOutOfRange)
		if _, err := l.DeleteRecordsBefore(3); err != nil {
			t.Fatal(err)
		}
		_, err = l.Read(2, 1<<20)
		wantErr(t, "Read below the log start", err, ErrOffsetOutOfRange)
		data, err = l.Read(3, 1)
		if err != nil || !bytes.Equal(data, b2) {
			t.Fatalf("Read(3) = %d bytes, %v; want the batch [3, 7]", len(data), err)
		}
	})
}

func TestHighWatermarkAlways(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		g := newGate(t)
		o := e.opts()
		o.FS = vfs.NewErrorFS(e.fs, g)
		l := openLog(t, o)
		first := mkBatch(t, 1, 3, 50, 1)
		appendDurable(t, l, first)

		g.hold()
		res := mustAppend(t, l, mkBatch(t, 2, 2, 50, 2))
		if res.BaseOffset != 3 || res.LastOffset != 4 {
			t.Fatalf("append = %+v", res)
		}
		// Written but not fsynced: invisible to readers.
		if hw, d, end := l.HighWatermark(), l.DurableOffset(), l.EndOffset(); hw != 3 || d != 3 || end != 5 {
			t.Fatalf("before fsync: HighWatermark %d DurableOffset %d EndOffset %d, want 3 3 5", hw, d, end)
		}
		if data, err := l.Read(3, 1<<20); err != nil || data != nil {
			t.Fatalf("Read at the high watermark before fsync = %d bytes, %v", len(data), err)
		}
		if data, err := l.Read(0, 1<<20); err != nil || !bytes.Equal(data, first) {
			t.Fatalf("Read(0) before fsync = %d bytes, %v; want only the durable batch", len(data), err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		wantErr(t, "WaitDurable with a cancelled context", l.WaitDurable(ctx, 5), context.Canceled)
		changed := l.Changed()
		g.open()
		if err := l.WaitDurable(context.Background(), 5); err != nil {
			t.Fatal(err)
		}
		<-changed
		if hw, d := l.HighWatermark(), l.DurableOffset(); hw != 5 || d != 5 {
			t.Fatalf("after fsync: HighWatermark %d DurableOffset %d, want 5", hw, d)
		}
	})
}

func TestHighWatermarkNever(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		o := e.opts()
		o.Durability = Never
		l := openLog(t, o)
		if l.Durability() != Never || l.Durability().String() != "never" {
			t.Fatalf("Durability = %v", l.Durability())
		}
		res := mustAppend(t, l, mkBatch(t, 1, 4, 50, 1))
		if hw := l.HighWatermark(); hw != 4 || res.LastOffset != 3 {
			t.Fatalf("HighWatermark %d right after Append, want 4", hw)
		}
		if d := l.DurableOffset(); d != 0 {
			t.Fatalf("DurableOffset %d without any fsync, want 0", d)
		}
		if err := l.WaitDurable(context.Background(), 4); err != nil {
			t.Fatalf("WaitDurable under Never: %v", err)
		}
		closeLog(t, l)
		l = openLog(t, o)
		if hw := l.HighWatermark(); hw != 4 {
			t.Fatalf("HighWatermark after reopen %d", hw)
		}
	})
}

func TestIntervalDurability(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		o := e.opts()
		o.Durability = Interval
		o.SyncInterval = time.Millisecond
		l := openLog(t, o)
		ch := l.Changed()
		mustAppend(t, l, mkBatch(t, 1, 3, 50, 1))
		if hw := l.HighWatermark(); hw != 3 {
			t.Fatalf("HighWatermark %d right after Append, want 3", hw)
		}
		if err := l.WaitDurable(context.Background(), 3); err != nil {
			t.Fatal(err)
		}
		for l.DurableOffset() < 3 {
			<-ch
			ch = l.Changed()
		}
		if d := l.DurableOffset(); d != 3 {
			t.Fatalf("DurableOffset %d", d)
		}
	})
}

func TestInvalidBatch(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		l := openLog(t, e.opts())
		appendDurable(t, l, mkBatch(t, 1, 2, 50, 1))
		size := l.Size()
		good := mkBatch(t, 2, 2, 50, 1)
		edit := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
		cases := map[string][]byte{
			"empty":        nil,
			"bad crc":      edit(func(b []byte) []byte { b[len(b)-3] ^= 1; return b }),
			"truncated":    edit(func(b []byte) []byte { return b[:len(b)-1] }),
			"header only":  edit(func(b []byte) []byte { return b[:batch.HeaderSize] }),
			"short":        edit(func(b []byte) []byte { return b[:10] }),
			"wrong magic":  edit(func(b []byte) []byte { b[16] = 1; return b }),
			"trailing":     edit(func(b []byte) []byte { return append(b, 0, 0, 0) }),
			"second bad":   slices.Concat(good, edit(func(b []byte) []byte { b[30] ^= 0x80; return b })),
			"second short": slices.Concat(good, good[:len(good)-5]),
		}
		for name, b := range cases {
			before := slices.Clone(b)
			_, err := l.Append(b)
			wantErr(t, name, err, ErrInvalidBatch)
			if !bytes.Equal(b, before) {
				t.Fatalf("%s: rejected input was modified", name)
			}
			if end, sz := l.EndOffset(), l.Size(); end != 2 || sz != size {
				t.Fatalf("%s: EndOffset %d Size %d after a rejected append, want 2 %d", name, end, sz, size)
			}
		}
		res := appendDurable(t, l, good)
		if res.BaseOffset != 2 {
			t.Fatalf("append after rejections got base %d, want 2", res.BaseOffset)
		}

		small := e.opts()
		small.SegmentBytes = 1000
		small.Dir += "-small"
		ls := openLog(t, small)
		_, err := ls.Append(mkBatch(t, 3, 1, 1000, 1))
		wantErr(t, "batch larger than a segment", err, ErrTooLarge)
		if ls.EndOffset() != 0 || ls.Size() != 0 {
			t.Fatal("an oversized batch was written")
		}
	})
}

// sevenBatches appends seven one-record 1 KiB batches to a log whose
// segments hold three, and returns them: segments 0, 3 (sealed) and 6.
func sevenBatches(t *testing.T, e fsEnv, tweak func(*Options)) (*Log, Options, [][]byte) {
	t.Helper()
	bs := len(mkBatch(t, 0, 1, 1024, 0))
	o := e.opts()
	o.SegmentBytes = int64(3*bs + 10)
	o.IndexIntervalBytes = 1
	o.RetentionMs = -1
	if tweak != nil {
		tweak(&o)
	}
	l := openLog(t, o)
	var out [][]byte
	for i := range 7 {
		b := mkBatch(t, i, 1, 1024, int64(1000+i*100))
		appendDurable(t, l, b)
		out = append(out, b)
	}
	return l, o, out
}

func TestRollBySize(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		l, o, batches := sevenBatches(t, e, nil)
		if got := bases(l); !slices.Equal(got, []int64{0, 3, 6}) {
			t.Fatalf("segment bases %v, want [0 3 6]", got)
		}
		if got, want := listDir(t, e.fs, e.dir), segFiles(6, 0, 3); !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
		bs := int64(len(batches[0]))
		for _, s := range *l.segs.Load() {
			want := 3 * bs
			if s.base == 6 {
				want = bs
			}
			if s.size.Load() != want {
				t.Fatalf("segment %d holds %d bytes, want %d", s.base, s.size.Load(), want)
			}
			// The sealed segments' index files load and match memory.
			if s.base < 6 {
				c := &segment{base: s.base, dir: o.Dir, fs: o.FS}
				if !c.loadIndexes(3 * bs) {
					t.Fatalf("index files of sealed segment %d do not load", s.base)
				}
				if !slices.Equal(c.idx, s.idx) || !slices.Equal(c.tidx, s.tidx) || c.next.Load() != s.base+3 || c.maxTs.Load() != s.maxTs.Load() {
					t.Fatalf("index files of segment %d: %v %v, memory %v %v", s.base, c.idx, c.tidx, s.idx, s.tidx)
				}
			}
		}
		equalBatches(t, "read back", readAll(t, l), batches)
	})
}

func TestRollByTime(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		c := newClock(10_000)
		o := e.opts()
		o.SegmentMs = 1000
		o.Now = c.now
		l := openLog(t, o)
		appendDurable(t, l, mkBatch(t, 1, 1, 10, 1))
		c.set(10_999)
		appendDurable(t, l, mkBatch(t, 2, 1, 10, 1))
		if got := bases(l); !slices.Equal(got, []int64{0}) {
			t.Fatalf("rolled before segment.ms: %v", got)
		}
		c.set(11_000)
		appendDurable(t, l, mkBatch(t, 3, 1, 10, 1))
		if got := bases(l); !slices.Equal(got, []int64{0, 2}) {
			t.Fatalf("segment bases %v, want [0 2]", got)
		}
		// The age counts from the segment's first append.
		c.set(11_999)
		appendDurable(t, l, mkBatch(t, 4, 1, 10, 1))
		c.set(12_000)
		appendDurable(t, l, mkBatch(t, 5, 1, 10, 1))
		if got := bases(l); !slices.Equal(got, []int64{0, 2, 4}) {
			t.Fatalf("segment bases %v, want [0 2 4]", got)
		}
		if got, want := listDir(t, e.fs, e.dir), segFiles(4, 0, 2); !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
	})
}

// snapshot is what a test compares across a reopen.
type snapshot struct {
	start, hw int64
	batches   [][]byte
	times     map[int64][3]int64 // ts → offset, record ts, found
	maxTs     [3]int64
}

func takeSnapshot(t *testing.T, l *Log) snapshot {
	t.Helper()
	s := snapshot{start: l.LogStartOffset(), hw: l.HighWatermark(), batches: readAll(t, l), times: map[int64][3]int64{}}
	for ts := int64(0); ts <= 2000; ts += 50 {
		o, rts, found, err := l.OffsetForTimestamp(ts)
		must(t, err)
		s.times[ts] = [3]int64{o, rts, b2i(found)}
	}
	o, ts, found, err := l.MaxTimestamp()
	must(t, err)
	s.maxTs = [3]int64{o, ts, b2i(found)}
	return s
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (s snapshot) check(t *testing.T, what string, l *Log) {
	t.Helper()
	got := takeSnapshot(t, l)
	if got.start != s.start || got.hw != s.hw {
		t.Fatalf("%s: log start %d high watermark %d, want %d %d", what, got.start, got.hw, s.start, s.hw)
	}
	equalBatches(t, what, got.batches, s.batches)
	for ts, w := range s.times {
		if got.times[ts] != w {
			t.Fatalf("%s: OffsetForTimestamp(%d) = %v, want %v", what, ts, got.times[ts], w)
		}
	}
	if got.maxTs != s.maxTs {
		t.Fatalf("%s: MaxTimestamp = %v, want %v", what, got.maxTs, s.maxTs)
	}
}

func TestReopenClean(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		l, o, _ := sevenBatches(t, e, nil)
		want := takeSnapshot(t, l)
		closeLog(t, l)
		if _, err := e.fs.Stat(l.path(cleanMarker)); err != nil {
			t.Fatalf("no clean marker after Close: %v", err)
		}
		if e.mem != nil {
			// Damage the active segment behind the log's back: the fast
			// path trusts the clean shutdown and does not rescan it.
			must(t, e.mem.Corrupt(l.active.path(logSuffix), 100, []byte{0xff}))
		}
		l = openLog(t, o)
		if _, err := e.fs.Stat(l.path(cleanMarker)); err == nil {
			t.Fatal("clean marker still present after Open")
		}
		if e.mem == nil {
			want.check(t, "after clean reopen", l)
		} else if hw, sz := l.HighWatermark(), l.Size(); hw != 7 || sz != 7*int64(len(want.batches[0])) {
			t.Fatalf("clean reopen rescanned: high watermark %d size %d", hw, sz)
		}
		res := appendDurable(t, l, mkBatch(t, 9, 2, 10, 5))
		if res.BaseOffset != 7 {
			t.Fatalf("append after reopen got base %d, want 7", res.BaseOffset)
		}
	})
}

func TestReopenAfterCrash(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		e.needMem(t)
		l, o, _ := sevenBatches(t, e, nil)
		want := takeSnapshot(t, l)
		wantIdx := slices.Clone(l.active.idx)
		o.FS = e.mem.CrashStrict()
		l2 := openLog(t, o)
		want.check(t, "after crash", l2)
		if !slices.Equal(l2.active.idx, wantIdx) {
			t.Fatalf("rebuilt active index %v, want %v", l2.active.idx, wantIdx)
		}
		res := appendDurable(t, l2, mkBatch(t, 9, 2, 10, 5))
		if res.BaseOffset != 7 {
			t.Fatalf("append after crash got base %d, want 7", res.BaseOffset)
		}

		// Under Never the active segment's unsynced tail is lost, but rolls
		// synced the sealed segments.
		e2 := fsEnv{fs: vfs.NewMem(), dir: "/n/p1"}
		e2.mem = e2.fs.(*vfs.MemFS)
		ln, on, batches := sevenBatches(t, e2, func(o *Options) { o.Durability = Never })
		on.FS = e2.mem.CrashStrict()
		_ = ln
		l3 := openLog(t, on)
		if hw := l3.HighWatermark(); hw != 6 {
			t.Fatalf("Never: recovered high watermark %d, want 6 (the sealed segments)", hw)
		}
		equalBatches(t, "Never after crash", readAll(t, l3), batches[:6])
	})
}

func TestRetentionBytes(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		l, _, batches := sevenBatches(t, e, nil)
		for i := 7; i < 10; i++ {
			b := mkBatch(t, i, 1, 1024, 5000)
			appendDurable(t, l, b)
			batches = append(batches, b)
		}
		// Segments 0, 3, 6 (sealed, 3 batches each) and 9 (1 batch).
		bs := int64(len(batches[0]))
		must(t, l.SetLimits(Limits{RetentionBytes: 4 * bs}))
		n, err := l.EnforceRetention()
		if err != nil || n != 2 {
			t.Fatalf("EnforceRetention = %d, %v; want 2", n, err)
		}
		if got := bases(l); !slices.Equal(got, []int64{6, 9}) {
			t.Fatalf("segments %v, want [6 9]", got)
		}
		if got, want := listDir(t, e.fs, e.dir), segFiles(9, 6); !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
		if s, sz := l.LogStartOffset(), l.Size(); s != 6 || sz != 4*bs {
			t.Fatalf("LogStartOffset %d Size %d, want 6 %d", s, sz, 4*bs)
		}
		_, err = l.Read(5, 1<<20)
		wantErr(t, "Read of a deleted offset", err, ErrOffsetOutOfRange)
		equalBatches(t, "after retention", readAll(t, l), batches[6:])
		if n, err := l.EnforceRetention(); n != 0 || err != nil {
			t.Fatalf("second EnforceRetention = %d, %v", n, err)
		}
		// Never the active segment, however small the limit.
		must(t, l.SetLimits(Limits{RetentionBytes: 1}))
		if n, err := l.EnforceRetention(); n != 1 || err != nil {
			t.Fatalf("EnforceRetention = %d, %v; want 1", n, err)
		}
		if got := bases(l); !slices.Equal(got, []int64{9}) || l.LogStartOffset() != 9 {
			t.Fatalf("segments %v start %d, want [9] 9", got, l.LogStartOffset())
		}
		equalBatches(t, "only the active segment", readAll(t, l), batches[9:])
	})
}

func TestRetentionMs(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		c := newClock(0)
		bs := len(mkBatch(t, 0, 1, 1024, 0))
		o := e.opts()
		o.SegmentBytes = int64(3*bs + 10)
		o.RetentionMs = 1000
		o.Now = c.now
		l := openLog(t, o)
		// Max timestamps: segment 0 → 100, 3 → 500, 6 → 2000, 9 (active) → 50.
		for i, ts := range []int64{100, 20, 30, 400, 500, 10, 2000, 5, 6, 50} {
			appendDurable(t, l, mkBatch(t, i, 1, 1024, ts))
		}
		if got := bases(l); !slices.Equal(got, []int64{0, 3, 6, 9}) {
			t.Fatalf("segments %v", got)
		}
		c.set(1500) // expires max timestamps < 500
		if n, err := l.EnforceRetention(); n != 1 || err != nil {
			t.Fatalf("EnforceRetention = %d, %v; want 1", n, err)
		}
		c.set(1501)
		if n, err := l.EnforceRetention(); n != 1 || err != nil {
			t.Fatalf("EnforceRetention = %d, %v; want 1", n, err)
		}
		if got := bases(l); !slices.Equal(got, []int64{6, 9}) || l.LogStartOffset() != 6 {
			t.Fatalf("segments %v start %d, want [6 9] 6", got, l.LogStartOffset())
		}
		// Segment 9 is long expired; -1 keeps forever.
		must(t, l.SetLimits(Limits{RetentionMs: -1}))
		c.set(1 << 40)
		if n, err := l.EnforceRetention(); n != 0 || err != nil {
			t.Fatalf("EnforceRetention with retention.ms=-1 = %d, %v", n, err)
		}
		// Expired with every segment before it, the active segment goes
		// too, as in Kafka: rolled, then deleted (retention_test.go).
		must(t, l.SetLimits(Limits{RetentionMs: 1000}))
		if n, err := l.EnforceRetention(); n != 2 || err != nil {
			t.Fatalf("EnforceRetention = %d, %v; want 2", n, err)
		}
		if got := bases(l); !slices.Equal(got, []int64{10}) || l.LogStartOffset() != 10 {
			t.Fatalf("segments %v start %d, want [10] 10", got, l.LogStartOffset())
		}
		if got, want := listDir(t, e.fs, e.dir), segFiles(10); !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
	})
}

func TestReaderOutlivesRetention(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		l, _, batches := sevenBatches(t, e, func(o *Options) {
			o.RetentionBytes = 1
			o.IndexIntervalBytes = 4096 // so appends raise time-index entries in place
		})
		seg := l.segmentFor(1)
		hw := l.visible.Load()
		if !seg.acquire() {
			t.Fatal("acquire failed")
		}
		if n, err := l.EnforceRetention(); n != 2 || err != nil {
			t.Fatalf("EnforceRetention = %d, %v", n, err)
		}
		_, err := l.Read(1, 1<<20)
		wantErr(t, "Read after retention", err, ErrOffsetOutOfRange)
		if _, err := e.fs.Stat(seg.path(logSuffix)); err != nil {
			t.Fatalf("segment file removed while a reader holds it: %v", err)
		}
		data, err := l.readSegment(seg, hw, 1, 1<<20)
		if err != nil || !bytes.Equal(data, slices.Concat(batches[1:3]...)) {
			t.Fatalf("reader of a removed segment got %d bytes, %v", len(data), err)
		}
		seg.release()
		if _, err := e.fs.Stat(seg.path(logSuffix)); err == nil {
			t.Fatal("segment file still present after the last reader left")
		}
		if got, want := listDir(t, e.fs, e.dir), segFiles(6); !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}

		// Readers racing appends and retention see whole, correct batches
		// or ErrOffsetOutOfRange, nothing else.
		stored := sync.Map{}
		for _, b := range batches {
			stored.Store(header(t, b).BaseOffset, b)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { // timestamp queries and iteration race appends too
			for ts := int64(0); ; ts = (ts + 97) % 2000 {
				select {
				case <-done:
					return
				default:
				}
				if _, _, _, err := l.OffsetForTimestamp(ts); err != nil {
					t.Errorf("OffsetForTimestamp(%d): %v", ts, err)
					return
				}
				if _, _, _, err := l.MaxTimestamp(); err != nil {
					t.Errorf("MaxTimestamp: %v", err)
					return
				}
				if err := l.Batches(l.LogStartOffset(), func(batch.Header) bool { return true }); err != nil {
					t.Errorf("Batches: %v", err)
					return
				}
			}
		})
		for r := range 3 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					start, hw := l.LogStartOffset(), l.HighWatermark()
					o := start + int64(i*7+r)%max(hw-start, 1)
					data, err := l.Read(o, 1)
					if errors.Is(err, ErrOffsetOutOfRange) || data == nil && err == nil {
						continue
					}
					if err != nil {
						t.Errorf("Read(%d): %v", o, err)
						return
					}
					want, _ := stored.Load(header(t, data).BaseOffset)
					if !bytes.Equal(data, want.([]byte)) {
						t.Errorf("Read(%d) returned wrong bytes", o)
						return
					}
				}
			})
		}
		for i := range 60 {
			b := mkBatch(t, 100+i, 1, 1024, int64(i*37%1500))
			stored.Store(l.EndOffset(), b)
			appendDurable(t, l, b)
			if _, err := l.EnforceRetention(); err != nil {
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
	})
}

func TestDeleteRecordsBefore(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		l, o, batches := sevenBatches(t, e, nil)
		got, err := l.DeleteRecordsBefore(4)
		if err != nil || got != 4 {
			t.Fatalf("DeleteRecordsBefore(4) = %d, %v", got, err)
		}
		if s := l.LogStartOffset(); s != 4 {
			t.Fatalf("LogStartOffset %d", s)
		}
		if b := bases(l); !slices.Equal(b, []int64{3, 6}) {
			t.Fatalf("segments %v, want [3 6]: only whole segments below go", b)
		}
		_, err = l.Read(3, 1<<20)
		wantErr(t, "Read below the new log start", err, ErrOffsetOutOfRange)
		equalBatches(t, "after DeleteRecords", readAll(t, l), batches[4:])
		if got, err := l.DeleteRecordsBefore(2); err != nil || got != 4 {
			t.Fatalf("DeleteRecordsBefore(2) = %d, %v; want a no-op at 4", got, err)
		}
		_, err = l.DeleteRecordsBefore(8)
		wantErr(t, "DeleteRecordsBefore past the high watermark", err, ErrOffsetOutOfRange)
		_, err = l.DeleteRecordsBefore(-2)
		wantErr(t, "DeleteRecordsBefore(-2)", err, ErrOffsetOutOfRange)
		if res := mustAppend(t, l, mkBatch(t, 9, 1, 10, 1)); res.LogStartOffset != 4 {
			t.Fatalf("AppendResult.LogStartOffset %d, want 4", res.LogStartOffset)
		}

		closeLog(t, l)
		l = openLog(t, o)
		if s := l.LogStartOffset(); s != 4 {
			t.Fatalf("LogStartOffset after reopen %d, want 4", s)
		}
		if e.mem != nil {
			o2 := o
			o2.FS = e.mem.CrashStrict()
			if s := openLog(t, o2).LogStartOffset(); s != 4 {
				t.Fatalf("LogStartOffset after crash %d, want 4", s)
			}
		}
		// -1 means the high watermark.
		got, err = l.DeleteRecordsBefore(-1)
		if err != nil || got != 8 {
			t.Fatalf("DeleteRecordsBefore(-1) = %d, %v; want 8", got, err)
		}
		if data, err := l.Read(8, 1<<20); data != nil || err != nil {
			t.Fatalf("Read at the high watermark = %d bytes, %v", len(data), err)
		}
		closeLog(t, l)
		l = openLog(t, o)
		if s, hw := l.LogStartOffset(), l.HighWatermark(); s != 8 || hw != 8 {
			t.Fatalf("after reopen: start %d hw %d, want 8 8", s, hw)
		}
		if res := appendDurable(t, l, mkBatch(t, 10, 1, 10, 1)); res.BaseOffset != 8 {
			t.Fatalf("append got %d, want 8", res.BaseOffset)
		}
	})
}

// TestSkipAheadAfterLoss: a DeleteRecords checkpoint past data a weaker
// durability lost makes the reopened log continue after it, never reusing
// an offset.
func TestSkipAheadAfterLoss(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		e.needMem(t)
		o := e.opts()
		o.Durability = Never
		l := openLog(t, o)
		mustAppend(t, l, mkBatch(t, 1, 5, 10, 1))
		if got, err := l.DeleteRecordsBefore(3); err != nil || got != 3 {
			t.Fatalf("DeleteRecordsBefore = %d, %v", got, err)
		}
		o.FS = e.mem.CrashStrict()
		l2 := openLog(t, o)
		if s, hw, end := l2.LogStartOffset(), l2.HighWatermark(), l2.EndOffset(); s != 3 || hw != 3 || end != 3 {
			t.Fatalf("start %d hw %d end %d, want 3 3 3", s, hw, end)
		}
		b := mkBatch(t, 2, 2, 10, 1)
		if res := mustAppend(t, l2, b); res.BaseOffset != 3 {
			t.Fatalf("append got %d, want 3", res.BaseOffset)
		}
		equalBatches(t, "after skip-ahead", readAll(t, l2), [][]byte{b})
	})
}
