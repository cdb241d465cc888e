package commitlog

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// SealedSegments lists every segment but the active one; OpenSegment
// reads one's bytes exactly and holds it while local retention drops it;
// EnforceLocalRetention deletes only below the offset the archive holds.
func TestTierAccessors(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		c := newClock(10_000)
		o := e.opts()
		o.SegmentBytes = 1000
		o.Now = c.now
		l := openLog(t, o)
		var written [][]byte
		for i := range 6 {
			b := mkBatch(t, i, 2, 300, int64(10_000+i*10))
			written = append(written, slices.Clone(b))
			appendDurable(t, l, b)
		}
		segs := l.SealedSegments()
		if len(segs) == 0 {
			t.Fatal("no sealed segments")
		}
		next := int64(0)
		for _, s := range segs {
			if s.BaseOffset != next || s.LastOffset < s.BaseOffset || s.Size == 0 || s.MaxTimestamp < 10_000 {
				t.Fatalf("segment %+v, want base %d", s, next)
			}
			next = s.LastOffset + 1
		}
		if active := bases(l); active[len(active)-1] != next {
			t.Fatalf("sealed end at %d, active segment at %d", next, active[len(active)-1])
		}

		first := segs[0]
		r, err := l.OpenSegment(first.BaseOffset)
		must(t, err)
		if ts, err := r.FirstTimestamp(); err != nil || ts != 10_000 {
			t.Fatalf("first timestamp %d, %v", ts, err)
		}
		// Nothing archived: local retention keeps everything.
		if n, err := l.EnforceLocalRetention(0, 1, 0); n != 0 || err != nil {
			t.Fatalf("retention with nothing archived: %d, %v", n, err)
		}
		// The first segment archived: only it goes, even though the
		// limits pass all of them.
		if n, err := l.EnforceLocalRetention(0, 1, first.LastOffset+1); n != 1 || err != nil {
			t.Fatalf("retention with one segment archived: %d, %v", n, err)
		}
		if l.LogStartOffset() != first.LastOffset+1 {
			t.Fatalf("log start %d, want %d", l.LogStartOffset(), first.LastOffset+1)
		}
		// The held reader still reads the dropped segment whole.
		got, err := io.ReadAll(r)
		must(t, err)
		if int64(len(got)) != first.Size || !bytes.Equal(got[:len(written[0])], written[0]) {
			t.Fatalf("read %d bytes of the dropped segment, want %d starting with the first batch", len(got), first.Size)
		}
		must(t, r.Close())
		if _, err := l.OpenSegment(first.BaseOffset); !errors.Is(err, ErrSegmentGone) {
			t.Fatalf("open a dropped segment: %v", err)
		}
		if _, err := l.OpenSegment(bases(l)[len(bases(l))-1]); !errors.Is(err, ErrSegmentGone) {
			t.Fatalf("open the active segment: %v", err)
		}
		// By age: nothing past retention.ms yet, then everything archived
		// and old goes; the active segment stays.
		if n, _ := l.EnforceLocalRetention(1_000_000, -1, 1<<62); n != 0 {
			t.Fatalf("deleted %d segments younger than retention", n)
		}
		c.set(10_000_000)
		if n, _ := l.EnforceLocalRetention(1000, -1, 1<<62); n != len(segs)-1 {
			t.Fatalf("deleted %d old archived segments, want %d", n, len(segs)-1)
		}
		if len(l.SealedSegments()) != 0 || len(bases(l)) != 1 {
			t.Fatalf("segments left %v", bases(l))
		}
	})
}
