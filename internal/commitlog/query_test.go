package commitlog

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// tsRecord is one record's offset and timestamp, for brute-force answers.
type tsRecord struct{ off, ts int64 }

// bruteTime answers OffsetForTimestamp from a list of records in offset
// order: the first at or after start with a timestamp >= ts.
func bruteTime(recs []tsRecord, start, ts int64) (int64, int64, bool) {
	for _, r := range recs {
		if r.off >= start && r.ts >= ts {
			return r.off, r.ts, true
		}
	}
	return 0, 0, false
}

func checkTimes(t *testing.T, what string, l *Log, recs []tsRecord) {
	t.Helper()
	start := l.LogStartOffset()
	var visible []tsRecord
	maxTs := tsRecord{ts: -1}
	for _, r := range recs {
		if r.off < l.HighWatermark() {
			visible = append(visible, r)
			if r.ts > maxTs.ts {
				maxTs = r
			}
		}
	}
	for ts := int64(-5); ts <= 2100; ts += 5 {
		o, rts, found, err := l.OffsetForTimestamp(ts)
		if err != nil {
			t.Fatalf("%s: OffsetForTimestamp(%d): %v", what, ts, err)
		}
		wo, wts, wfound := bruteTime(visible, start, ts)
		if o != wo || rts != wts || found != wfound {
			t.Fatalf("%s: OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", what, ts, o, rts, found, wo, wts, wfound)
		}
	}
	o, ts, found, err := l.MaxTimestamp()
	if err != nil {
		t.Fatalf("%s: MaxTimestamp: %v", what, err)
	}
	if want := (maxTs.ts >= 0); found != want || found && (o != maxTs.off || ts != maxTs.ts) {
		t.Fatalf("%s: MaxTimestamp = %d, %d, %v; want %d, %d, %v", what, o, ts, found, maxTs.off, maxTs.ts, want)
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	for _, interval := range []int64{1, 4096} {
		forEachFS(t, func(t *testing.T, e fsEnv) {
			o := e.opts()
			o.SegmentBytes = 1500
			o.IndexIntervalBytes = interval
			o.RetentionMs = -1
			l := openLog(t, o)
			var recs []tsRecord
			add := func(b []byte, tss ...int64) {
				res := appendDurable(t, l, b)
				for i, ts := range tss {
					recs = append(recs, tsRecord{res.BaseOffset + int64(i), ts})
				}
			}
			for i, tss := range [][]int64{
				{100, 90, 110}, {105}, {200, 150}, {120}, {300, 10}, {250},
				{50, 60}, {300}, {1000, 5}, {400}, {700, 800, 20},
			} {
				add(mkBatchTs(t, i, 200, tss...), tss...)
			}
			// A transaction marker is a record too, as in Kafka.
			marker, err := batch.Build(batch.BuildOptions{
				BaseTimestamp: 2000, HasProducer: true, ProducerID: 7, BaseSequence: -1,
				Transactional: true, Control: true,
			}, []batch.Record{batch.EndTxnMarker(batch.ControlCommit, 0)})
			must(t, err)
			add(marker, 2000)
			if n := len(bases(l)); n < 4 {
				t.Fatalf("only %d segments", n)
			}
			checkTimes(t, "live", l, recs)

			if _, err := l.DeleteRecordsBefore(4); err != nil {
				t.Fatal(err)
			}
			checkTimes(t, "after DeleteRecords", l, recs)

			closeLog(t, l)
			l = openLog(t, o)
			checkTimes(t, "after clean reopen", l, recs)
			if e.mem != nil {
				o.FS = e.mem.CrashStrict()
				checkTimes(t, "after crash", openLog(t, o), recs)
			}
		})
	}
}

// TestMaxTimestampInvisible: records written but not yet durable do not
// count.
func TestMaxTimestampInvisible(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		g := newGate(t)
		o := e.opts()
		o.FS = vfs.NewErrorFS(e.fs, g)
		l := openLog(t, o)
		if _, _, found, err := l.MaxTimestamp(); found || err != nil {
			t.Fatalf("MaxTimestamp of an empty log: found %v, %v", found, err)
		}
		appendDurable(t, l, mkBatchTs(t, 1, 10, 100, 120, 110))
		g.hold()
		mustAppend(t, l, mkBatchTs(t, 2, 10, 500))
		checkTimes(t, "fsync pending", l, []tsRecord{{0, 100}, {1, 120}, {2, 110}, {3, 500}})
		var n int
		must(t, l.Batches(0, func(batch.Header) bool { n++; return true }))
		if n != 1 {
			t.Fatalf("Batches saw %d batches, want only the durable one", n)
		}
		g.open()
		must(t, l.WaitDurable(context.Background(), 4))
		checkTimes(t, "fsynced", l, []tsRecord{{0, 100}, {1, 120}, {2, 110}, {3, 500}})
	})
}

func TestLogAppendTime(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		c := newClock(5000)
		o := e.opts()
		o.LogAppendTime = true
		o.Now = c.now
		o.RetentionMs = -1
		l := openLog(t, o)
		res := appendDurable(t, l, slices.Concat(mkBatchTs(t, 1, 10, 10, 12, 11), mkBatchTs(t, 2, 10, 13)))
		if res.AppendTimeMs != 5000 {
			t.Fatalf("AppendTimeMs %d, want 5000", res.AppendTimeMs)
		}
		data, err := l.Read(0, 1<<20)
		must(t, err)
		for _, b := range splitAll(t, data) {
			h, recs, err := batch.Records(b, 1<<20)
			if err != nil {
				t.Fatalf("stamped batch does not verify: %v", err)
			}
			if !h.LogAppendTime() || h.MaxTimestamp != 5000 {
				t.Fatalf("batch at %d: LogAppendTime %v MaxTimestamp %d", h.BaseOffset, h.LogAppendTime(), h.MaxTimestamp)
			}
			for _, r := range recs {
				if r.Timestamp(h) != 5000 {
					t.Fatalf("record %d timestamp %d, want 5000", r.Offset(h), r.Timestamp(h))
				}
			}
		}
		checkTimes(t, "LogAppendTime", l, []tsRecord{{0, 5000}, {1, 5000}, {2, 5000}, {3, 5000}})

		// Switched off by SetLimits: producer timestamps are kept.
		must(t, l.SetLimits(Limits{}))
		res = appendDurable(t, l, mkBatchTs(t, 3, 10, 7000))
		if res.AppendTimeMs != -1 {
			t.Fatalf("AppendTimeMs %d after switching LogAppendTime off", res.AppendTimeMs)
		}
		checkTimes(t, "CreateTime again", l, []tsRecord{{0, 5000}, {1, 5000}, {2, 5000}, {3, 5000}, {4, 7000}})
		must(t, l.SetLimits(Limits{LogAppendTime: true}))
		c.set(6000)
		if res := appendDurable(t, l, mkBatchTs(t, 4, 10, 1)); res.AppendTimeMs != 6000 {
			t.Fatalf("AppendTimeMs %d, want 6000", res.AppendTimeMs)
		}
	})
}

func TestBatches(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		l, _, batches := sevenBatches(t, e, nil)
		collect := func(from int64, limit int) []int64 {
			var got []int64
			must(t, l.Batches(from, func(h batch.Header) bool {
				got = append(got, h.BaseOffset)
				return len(got) < limit
			}))
			return got
		}
		if got := collect(0, 100); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 6}) {
			t.Fatalf("Batches(0) = %v", got)
		}
		if got := collect(4, 100); !slices.Equal(got, []int64{4, 5, 6}) {
			t.Fatalf("Batches(4) = %v", got)
		}
		if got := collect(1, 2); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("Batches(1) stopped after 2 = %v", got)
		}
		if got := collect(7, 100); got != nil {
			t.Fatalf("Batches(7) at the high watermark = %v", got)
		}
		// Headers match the stored batches.
		must(t, l.Batches(0, func(h batch.Header) bool {
			if h != header(t, batches[h.BaseOffset]) {
				t.Fatalf("header at %d differs", h.BaseOffset)
			}
			return true
		}))
		// Multi-record batches: from inside a batch starts with it.
		res := appendDurable(t, l, mkBatch(t, 8, 5, 10, 1))
		if got := collect(res.BaseOffset+3, 100); !slices.Equal(got, []int64{res.BaseOffset}) {
			t.Fatalf("Batches from inside a batch = %v", got)
		}
	})
}

func TestSetLimits(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		c := newClock(0)
		o := e.opts()
		o.Now = c.now
		o.RetentionMs = -1
		l := openLog(t, o)
		bs := int64(len(mkBatch(t, 0, 1, 1024, 0)))
		must(t, l.SetLimits(Limits{SegmentBytes: 2*bs + 1}))
		for i := range 3 {
			appendDurable(t, l, mkBatch(t, i, 1, 1024, 0))
		}
		if got := bases(l); !slices.Equal(got, []int64{0, 2}) {
			t.Fatalf("segments %v, want [0 2]", got)
		}
		if err := l.SetLimits(Limits{SegmentBytes: 50}); err == nil {
			t.Fatal("SetLimits accepted segment.bytes 50")
		}
		if err := l.SetLimits(Limits{SegmentBytes: 1 << 31}); err == nil {
			t.Fatal("SetLimits accepted segment.bytes 2 GiB")
		}
		appendDurable(t, l, mkBatch(t, 3, 1, 1024, 0))
		appendDurable(t, l, mkBatch(t, 4, 1, 1024, 0))
		if got := bases(l); !slices.Equal(got, []int64{0, 2, 4}) {
			t.Fatalf("segments %v, want [0 2 4]: a rejected SetLimits must change nothing", got)
		}
		must(t, l.SetLimits(Limits{SegmentMs: 100}))
		c.set(100)
		appendDurable(t, l, mkBatch(t, 5, 1, 10, 0))
		if got := bases(l); !slices.Equal(got, []int64{0, 2, 4, 5}) {
			t.Fatalf("segments %v, want a roll by segment.ms", got)
		}
		must(t, l.SetLimits(Limits{RetentionBytes: bs}))
		if n, err := l.EnforceRetention(); n != 2 || err != nil {
			t.Fatalf("EnforceRetention = %d, %v; want 2", n, err)
		}
		if s := l.LogStartOffset(); s != 4 {
			t.Fatalf("LogStartOffset %d, want 4", s)
		}
	})
}

func TestClose(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		g := newGate(t)
		o := e.opts()
		o.FS = vfs.NewErrorFS(e.fs, g)
		l := openLog(t, o)
		appendDurable(t, l, mkBatch(t, 1, 2, 10, 1))
		g.hold()
		res := mustAppend(t, l, mkBatch(t, 2, 2, 10, 1))
		waitErr := make(chan error)
		go func() { waitErr <- l.WaitDurable(context.Background(), res.LastOffset+1) }()
		<-g.waiting // the syncer is blocked in fsync
		closed := make(chan error)
		go func() { closed <- l.Close() }()
		g.open()
		must(t, <-closed)
		if err := <-waitErr; err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitDurable across Close: %v", err)
		}
		if d := l.DurableOffset(); d != 4 {
			t.Fatalf("DurableOffset after Close %d, want 4", d)
		}
		must(t, l.Close())
		_, err := l.Append(mkBatch(t, 3, 1, 10, 1))
		wantErr(t, "Append after Close", err, ErrClosed)
		wantErr(t, "WaitDurable after Close", l.WaitDurable(context.Background(), 10), ErrClosed)
		_, err = l.EnforceRetention()
		wantErr(t, "EnforceRetention after Close", err, ErrClosed)
		_, err = l.DeleteRecordsBefore(1)
		wantErr(t, "DeleteRecordsBefore after Close", err, ErrClosed)
		l = openLog(t, e.opts())
		if hw := l.HighWatermark(); hw != 4 {
			t.Fatalf("reopened high watermark %d, want 4", hw)
		}
	})
}

func TestOptions(t *testing.T) {
	m := vfs.NewMem()
	for name, o := range map[string]Options{
		"no FS":         {Dir: "/d"},
		"no dir":        {FS: m},
		"small segment": {FS: m, Dir: "/d", SegmentBytes: 99},
		"huge segment":  {FS: m, Dir: "/d", SegmentBytes: 1 << 31},
		"durability":    {FS: m, Dir: "/d", Durability: 7},
	} {
		if l, err := Open(o); err == nil {
			_ = l.Close()
			t.Fatalf("%s: Open succeeded", name)
		}
	}
	for d, want := range map[Durability]string{Always: "always", Interval: "interval", Never: "never", 9: "durability(9)"} {
		if d.String() != want {
			t.Fatalf("%d.String() = %q", int(d), d.String())
		}
	}
	l := openLog(t, Options{FS: m, Dir: "/d"})
	if l.Dir() != "/d" || l.Durability() != Always || l.Err() != nil {
		t.Fatalf("Dir %q Durability %v Err %v", l.Dir(), l.Durability(), l.Err())
	}
	// Only the segment, no stray files.
	if got := listDir(t, m, "/d"); !slices.Equal(got, []string{segmentName(0, logSuffix)}) {
		t.Fatalf("files of a new log: %v", got)
	}
}

// TestOffsetForTimestampBoundsDecompression: the log stores compressed
// batches without decompressing them (the broker checks records on
// produce), so a batch that decompresses past the query bound can be on
// disk from an older build; a timestamp lookup over it fails with
// ErrCorrupt instead of allocating without bound.
func TestOffsetForTimestampBoundsDecompression(t *testing.T) {
	m := vfs.NewMem()
	l := openLog(t, Options{FS: m, Dir: "/p", Logger: quiet})
	// One record's worth of header, then 192 MiB of zeros in a few KiB.
	bomb, err := batch.Build(batch.BuildOptions{Codec: batch.CodecZstd, BaseTimestamp: 1000}, []batch.Record{{Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	bomb = enc.EncodeAll(make([]byte, 3*maxQueryDecompressed), bomb[:batch.HeaderSize:batch.HeaderSize])
	binary.BigEndian.PutUint32(bomb[8:], uint32(len(bomb)-12))
	binary.BigEndian.PutUint32(bomb[17:], crc32.Checksum(bomb[21:], castagnoli))
	appendDurable(t, l, bomb)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, _, err = l.OffsetForTimestamp(0)
	runtime.ReadMemStats(&after)
	wantErr(t, "lookup over a bomb", err, ErrCorrupt)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > maxQueryDecompressed+16<<20 {
		t.Fatalf("lookup allocated %d MiB", grown>>20)
	}
}
