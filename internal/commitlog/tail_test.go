package commitlog

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// Torn-tail tests: the active segment of a durable log is cut or damaged
// at every byte, and recovery must keep exactly the batches before the
// damage, with indexes that answer as a fresh scan of those batches does.

// tailLog is a log of several segments whose active segment holds a few
// small batches with unordered timestamps.
type tailLog struct {
	base    *vfs.MemFS // the durable state, without a clean marker
	opts    Options
	active  *segment
	batches [][]byte // all batches, in offset order
	recs    []tsRecord
	pos     []int64 // position of each active-segment batch in its file
	first   int     // index in batches of the active segment's first batch
	liveIdx []idxEntry
}

func newTailLog(t *testing.T) *tailLog {
	t.Helper()
	m := vfs.NewMem()
	o := Options{FS: m, Dir: "/t/p", SegmentBytes: 1200, IndexIntervalBytes: 100, RetentionMs: -1, Logger: quiet}
	l := openLog(t, o)
	tl := &tailLog{opts: o}
	tss := [][]int64{{50, 40}, {60}, {10, 90, 20}, {70}, {30, 30}, {95}, {80, 5}, {100}, {65, 66, 67}, {15}, {99, 1}}
	for i := 0; i < 22; i++ {
		if i == 15 { // the rest stay in the active segment
			must(t, l.SetLimits(Limits{SegmentBytes: 1 << 20}))
		}
		ts := tss[i%len(tss)]
		b := mkBatchTs(t, i, 20+i*7%60, ts...)
		res := appendDurable(t, l, b)
		tl.batches = append(tl.batches, b)
		for k, x := range ts {
			tl.recs = append(tl.recs, tsRecord{res.BaseOffset + int64(k), x})
		}
	}
	if n := len(bases(l)); n < 3 {
		t.Fatalf("only %d segments", n)
	}
	tl.active = l.active
	tl.liveIdx = slices.Clone(l.active.idx)
	var pos int64
	for i, b := range tl.batches {
		if header(t, b).BaseOffset < l.active.base {
			continue
		}
		if len(tl.pos) == 0 {
			tl.first = i
		}
		tl.pos = append(tl.pos, pos)
		pos += int64(len(b))
	}
	if len(tl.pos) < 4 || pos != l.active.size.Load() {
		t.Fatalf("active segment: %d batches, %d bytes (want %d)", len(tl.pos), l.active.size.Load(), pos)
	}
	tl.base = m.CrashStrict()
	return tl
}

func (tl *tailLog) size() int64 {
	n := len(tl.batches)
	return tl.pos[len(tl.pos)-1] + int64(len(tl.batches[n-1]))
}

// damaged returns a copy of the durable state with the active segment
// changed by f.
func (tl *tailLog) damaged(t *testing.T, f func(m *vfs.MemFS, name string)) *vfs.MemFS {
	t.Helper()
	m := tl.base.CrashStrict()
	f(m, tl.active.path(logSuffix))
	return m
}

// check opens m and verifies that exactly the first keep batches of the
// active segment survived, as want (nil: as appended).
func (tl *tailLog) check(t *testing.T, what string, m *vfs.MemFS, keep int, want [][]byte) {
	t.Helper()
	o := tl.opts
	o.FS = m
	l, err := Open(o)
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	defer l.Close()
	all := tl.batches[:tl.first+keep]
	if want != nil {
		all = want
	}
	var hw int64
	if n := len(all); n > 0 {
		hw = header(t, all[n-1]).LastOffset() + 1
	}
	validSize := int64(0)
	if keep < len(tl.pos) {
		validSize = tl.pos[keep]
	} else {
		validSize = tl.size()
	}
	if got := l.HighWatermark(); got != hw {
		t.Fatalf("%s: high watermark %d, want %d", what, got, hw)
	}
	if got := l.active.size.Load(); got != validSize {
		t.Fatalf("%s: active segment %d bytes, want %d", what, got, validSize)
	}
	if got, err := m.ReadFile(tl.active.path(logSuffix)); err != nil || int64(len(got)) != validSize {
		t.Fatalf("%s: active file %d bytes (%v), want truncated to %d", what, len(got), err, validSize)
	}
	equalBatches(t, what, readAll(t, l), all)
	// Every offset reads back starting with its own batch.
	for _, b := range all[tl.first:] {
		h := header(t, b)
		for off := h.BaseOffset; off <= h.LastOffset(); off++ {
			data, err := l.Read(off, 1)
			if err != nil || !bytes.Equal(data, b) {
				t.Fatalf("%s: Read(%d) = %d bytes, %v; want its batch", what, off, len(data), err)
			}
		}
	}
	// The offset index is the live one's prefix for the kept bytes.
	var wantIdx []idxEntry
	for _, e := range tl.liveIdx {
		if int64(e.pos) < validSize {
			wantIdx = append(wantIdx, e)
		}
	}
	if !slices.Equal(l.active.idx, wantIdx) {
		t.Fatalf("%s: rebuilt index %v, want %v", what, l.active.idx, wantIdx)
	}
	// Timestamp lookups agree with a brute-force scan of the kept records.
	var recs []tsRecord
	for _, r := range tl.recs {
		if r.off < hw {
			recs = append(recs, r)
		}
	}
	for ts := int64(0); ts <= 101; ts += 3 {
		o, rts, found, err := l.OffsetForTimestamp(ts)
		wo, wts, wfound := bruteTime(recs, 0, ts)
		if err != nil || o != wo || rts != wts || found != wfound {
			t.Fatalf("%s: OffsetForTimestamp(%d) = %d %d %v %v, want %d %d %v", what, ts, o, rts, found, err, wo, wts, wfound)
		}
	}
	res, err := l.Append(mkBatch(t, 999, 1, 5, 0))
	if err != nil || res.BaseOffset != hw {
		t.Fatalf("%s: append after recovery = %+v, %v; want base %d", what, res, err, hw)
	}
}

// keepFor returns how many active-segment batches lie wholly below cut.
func (tl *tailLog) keepFor(cut int64) int {
	k := 0
	for k < len(tl.pos) && tl.pos[k]+int64(len(tl.batches[tl.first+k])) <= cut {
		k++
	}
	return k
}

func TestTornTailTruncate(t *testing.T) {
	tl := newTailLog(t)
	n := 0
	for cut := int64(0); cut <= tl.size(); cut++ {
		m := tl.damaged(t, func(m *vfs.MemFS, name string) {
			f, err := m.OpenReadWrite(name)
			must(t, err)
			must(t, f.Truncate(cut))
			must(t, f.Sync())
			must(t, f.Close())
		})
		tl.check(t, "cut at "+itoa(cut), m, tl.keepFor(cut), nil)
		n++
	}
	t.Logf("%d truncation points recovered", n)
}

func TestTornTailScribble(t *testing.T) {
	tl := newTailLog(t)
	n := 0
	for p := int64(0); p < tl.size(); p++ {
		m := tl.damaged(t, func(m *vfs.MemFS, name string) {
			b, err := m.ReadFile(name)
			must(t, err)
			must(t, m.Corrupt(name, p, []byte{b[p] ^ 0xff}))
		})
		k := tl.keepFor(p) // the batch holding p
		if rel := p - tl.pos[k]; rel >= 12 && rel < 16 {
			// PartitionLeaderEpoch is outside the CRC, as in Kafka: the
			// batch stays valid with the changed epoch.
			want := slices.Clone(tl.batches)
			want[tl.first+k] = slices.Clone(want[tl.first+k])
			want[tl.first+k][rel] ^= 0xff
			tl.check(t, "epoch byte at "+itoa(p), m, len(tl.pos), want)
			continue
		}
		tl.check(t, "scribble at "+itoa(p), m, k, nil)
		n++
	}
	t.Logf("%d scribbled bytes recovered", n)
}

// TestTornTailJunk appends zeros (a crash after the file grew but before
// its data landed) and garbage after the last batch.
func TestTornTailJunk(t *testing.T) {
	tl := newTailLog(t)
	for _, junk := range [][]byte{
		{0}, make([]byte, 11), make([]byte, 61), make([]byte, 4096),
		[]byte("garbage after the last batch, definitely not a record batch header"),
		tl.batches[len(tl.batches)-1], // a stale copy: wrong base offset
		tl.batches[len(tl.batches)-1][:70],
	} {
		m := tl.damaged(t, func(m *vfs.MemFS, name string) {
			f, err := m.OpenReadWrite(name)
			must(t, err)
			_, err = f.WriteAt(junk, tl.size())
			must(t, err)
			must(t, f.Sync())
			must(t, f.Close())
		})
		tl.check(t, "junk of "+itoa(int64(len(junk))), m, len(tl.pos), nil)
		// The truncation was made durable: after another crash the log
		// holds the batches and the one check appended, nothing else.
		o := tl.opts
		o.FS = m.CrashStrict()
		l := openLog(t, o)
		if got := readAll(t, l); len(got) != len(tl.batches)+1 || !bytes.Equal(got[len(got)-2], tl.batches[len(tl.batches)-1]) {
			t.Fatalf("junk of %d, recovered twice: %d batches", len(junk), len(got))
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
